#include "controller/certificate_authority.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/logging.h"

namespace dockyard {
namespace {

constexpr absl::Duration kCaValidity = absl::Hours(24 * 365 * 10);
constexpr absl::Duration kServerValidity = absl::Hours(24 * 365);
constexpr absl::Duration kAgentValidity = absl::Hours(24 * 365);
// A server certificate this close to its end is re-issued on start.
constexpr absl::Duration kRenewBefore = absl::Hours(24 * 30);

bool IsIpAddress(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Reads `path` when it exists: nullopt-like empty string for absent.
absl::StatusOr<std::string> ReadIfPresent(const std::string& path) {
  auto text = ReadFileToString(path);
  if (absl::IsNotFound(text.status())) return std::string();
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateAuthority>> CertificateAuthority::LoadOrCreate(
    const std::string& tls_dir, const std::vector<std::string>& advertise_names) {
  auto log = Logger("controller");
  std::error_code ec;
  std::filesystem::create_directories(tls_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(tls_dir, ": ", ec.message()));
  std::filesystem::permissions(tls_dir, std::filesystem::perms(0755), ec);

  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority());
  ca->ca_path_ = tls_dir + "/ca.crt";
  const std::string ca_key_path = tls_dir + "/ca.key";
  auto ca_cert = ReadIfPresent(ca->ca_path_);
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = ReadIfPresent(ca_key_path);
  if (!ca_key.ok()) return ca_key.status();
  if (ca_cert->empty() != ca_key->empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        tls_dir, " holds only one of ca.crt and ca.key; restore the other (a new CA would orphan every "
                 "enrolled agent), or remove both to start a new CA"));
  }
  if (ca_cert->empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto fresh = NewCertificateAuthority(absl::StrCat("Dockyard CA ", host), kCaValidity);
    if (!fresh.ok()) return fresh.status();
    // The key first: a crash in between leaves a key without a certificate, which the
    // check above reports rather than silently replacing.
    if (absl::Status st = WriteFileAtomically(ca_key_path, fresh->key_pem, 0600); !st.ok()) return st;
    if (absl::Status st = WriteFileAtomically(ca->ca_path_, fresh->certificate_pem, 0644); !st.ok()) return st;
    log->info("created a certificate authority in {}", tls_dir);
    ca->ca_ = *std::move(fresh);
  } else {
    ca->ca_ = KeyAndCertificate{*ca_key, *ca_cert};
  }

  // The names the server certificate must carry.
  std::vector<std::string> names = {"localhost", "127.0.0.1"};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') names.push_back(host);
  for (const std::string& name : advertise_names) {
    if (!name.empty()) names.push_back(name);
  }
  CertificateRequest request;
  request.common_name = "dockyard-controller";
  request.server = true;
  request.validity = kServerValidity;
  std::set<std::string> wanted;
  for (const std::string& name : names) {
    const bool ip = IsIpAddress(name);
    (ip ? request.ip_addresses : request.dns_names).push_back(name);
    wanted.insert(absl::StrCat(ip ? "IP:" : "DNS:", name));
  }

  const std::string server_cert_path = tls_dir + "/server.crt";
  const std::string server_key_path = tls_dir + "/server.key";
  auto server_cert = ReadIfPresent(server_cert_path);
  if (!server_cert.ok()) return server_cert.status();
  auto server_key = ReadIfPresent(server_key_path);
  if (!server_key.ok()) return server_key.status();
  bool reissue = server_cert->empty() || server_key->empty();
  if (!reissue) {
    auto have = SubjectAltNames(*server_cert);
    auto left = TimeLeft(*server_cert);
    const std::set<std::string> named = have.ok() ? std::set<std::string>(have->begin(), have->end())
                                                  : std::set<std::string>();
    reissue = !have.ok() || !left.ok() || *left < kRenewBefore ||
              !std::includes(named.begin(), named.end(), wanted.begin(), wanted.end()) ||
              !VerifyIssuedBy(ca->ca_.certificate_pem, *server_cert, CertificatePurpose::kTlsServer).ok();
  }
  if (reissue) {
    auto key = NewPrivateKeyPem();
    if (!key.ok()) return key.status();
    auto cert = IssueForKey(ca->ca_, *key, request);
    if (!cert.ok()) return cert.status();
    if (absl::Status st = WriteFileAtomically(server_key_path, *key, 0600); !st.ok()) return st;
    if (absl::Status st = WriteFileAtomically(server_cert_path, *cert, 0644); !st.ok()) return st;
    log->info("issued the server certificate for {} names", names.size());
    ca->server_ = KeyAndCertificate{*key, *cert};
  } else {
    ca->server_ = KeyAndCertificate{*server_key, *server_cert};
  }
  return ca;
}

absl::StatusOr<std::string> CertificateAuthority::IssueAgentCertificate(const std::string& name,
                                                                        const std::string& csr_pem) const {
  CertificateRequest request;
  request.common_name = name;
  request.client = true;
  request.validity = kAgentValidity;
  return IssueForCsr(ca_, csr_pem, request);
}

absl::Status CertificateAuthority::VerifyClient(const std::string& certificate_pem) const {
  return VerifyIssuedBy(ca_.certificate_pem, certificate_pem, CertificatePurpose::kTlsClient);
}

}  // namespace dockyard
