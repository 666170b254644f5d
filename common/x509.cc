#include "common/x509.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"

namespace dockyard {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

// OpenSSL's own reason for the last failure, for error messages.
std::string OpenSslError(const std::string& what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return absl::StrCat(what, ": ", buf);
}

Bio MemoryBio(const std::string& pem) { return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

std::string Drain(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<Key> ParseKey(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return absl::InvalidArgumentError(OpenSslError("not a PEM private key"));
  return key;
}

absl::StatusOr<Cert> ParseCert(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError(OpenSslError("not a PEM certificate"));
  return cert;
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return Drain(bio.get());
}

// The CN as an explicit UTF8String: agent names may be up to 128 characters, and
// OpenSSL's string table would cap a CN at X.500's 64. Decoders do not enforce it.
int AddCommonName(X509_NAME* name, const std::string& common_name) {
  return X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                    reinterpret_cast<const unsigned char*>(common_name.data()),
                                    static_cast<int>(common_name.size()), -1, 0);
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return absl::InternalError(OpenSslError(absl::StrCat("extension ", value)));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return absl::InternalError(OpenSslError("X509_add_ext"));
  return absl::OkStatus();
}

// A certificate for `subject_key` named `request`, signed by `issuer_key` (and
// `issuer`, or self-signed when it is null).
absl::StatusOr<std::string> Issue(EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key,
                                  const CertificateRequest& request, bool ca) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  Bignum serial(BN_new());
  BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  // A little slack for clocks that disagree between hosts.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), absl::ToInt64Seconds(request.validity));
  X509_set_pubkey(cert.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Dockyard"), -1, -1, 0);
  if (AddCommonName(name, request.common_name) != 1) {
    return absl::InvalidArgumentError(OpenSslError(absl::StrCat("common name \"", request.common_name, "\"")));
  }
  X509* signer = issuer == nullptr ? cert.get() : issuer;
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));

  std::vector<std::pair<int, std::string>> extensions;
  extensions.emplace_back(NID_basic_constraints, ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE");
  extensions.emplace_back(NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  std::vector<std::string> usages;
  if (request.server) usages.push_back("serverAuth");
  if (request.client) usages.push_back("clientAuth");
  if (!usages.empty()) extensions.emplace_back(NID_ext_key_usage, absl::StrJoin(usages, ","));
  std::vector<std::string> alt;
  for (const std::string& dns : request.dns_names) alt.push_back("DNS:" + dns);
  for (const std::string& ip : request.ip_addresses) alt.push_back("IP:" + ip);
  if (!alt.empty()) extensions.emplace_back(NID_subject_alt_name, absl::StrJoin(alt, ","));
  extensions.emplace_back(NID_subject_key_identifier, "hash");
  if (!ca) extensions.emplace_back(NID_authority_key_identifier, "keyid:always");
  for (const auto& [nid, value] : extensions) {
    if (absl::Status st = AddExtension(cert.get(), signer, nid, value); !st.ok()) return st;
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return absl::InternalError(OpenSslError("signing the certificate"));
  }
  return CertPem(cert.get());
}

}  // namespace

absl::StatusOr<std::string> NewPrivateKeyPem() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError(OpenSslError("generating an EC key"));
  Bio bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError(OpenSslError("writing the key"));
  }
  return Drain(bio.get());
}

absl::StatusOr<std::string> NewCsrPem(const std::string& key_pem, const std::string& common_name) {
  auto key = ParseKey(key_pem);
  if (!key.ok()) return key.status();
  Req req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (AddCommonName(name, common_name) != 1) {
    return absl::InvalidArgumentError(OpenSslError(absl::StrCat("common name \"", common_name, "\"")));
  }
  X509_REQ_set_pubkey(req.get(), key->get());
  if (X509_REQ_sign(req.get(), key->get(), EVP_sha256()) == 0) {
    return absl::InternalError(OpenSslError("signing the CSR"));
  }
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  return Drain(bio.get());
}

absl::StatusOr<KeyAndCertificate> NewCertificateAuthority(const std::string& common_name,
                                                          absl::Duration validity) {
  auto key_pem = NewPrivateKeyPem();
  if (!key_pem.ok()) return key_pem.status();
  auto key = ParseKey(*key_pem);
  if (!key.ok()) return key.status();
  CertificateRequest request;
  request.common_name = common_name;
  request.validity = validity;
  auto cert = Issue(key->get(), nullptr, key->get(), request, /*ca=*/true);
  if (!cert.ok()) return cert.status();
  return KeyAndCertificate{*key_pem, *cert};
}

absl::StatusOr<std::string> IssueForKey(const KeyAndCertificate& ca, const std::string& key_pem,
                                        const CertificateRequest& request) {
  auto key = ParseKey(key_pem);
  if (!key.ok()) return key.status();
  auto ca_key = ParseKey(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto ca_cert = ParseCert(ca.certificate_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  return Issue(key->get(), ca_cert->get(), ca_key->get(), request, /*ca=*/false);
}

absl::StatusOr<std::string> IssueForCsr(const KeyAndCertificate& ca, const std::string& csr_pem,
                                        const CertificateRequest& request) {
  Bio bio = MemoryBio(csr_pem);
  Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return absl::InvalidArgumentError(OpenSslError("not a PEM certificate request"));
  EVP_PKEY* public_key = X509_REQ_get0_pubkey(req.get());
  if (public_key == nullptr || X509_REQ_verify(req.get(), public_key) != 1) {
    return absl::InvalidArgumentError(OpenSslError("the certificate request is not signed by its own key"));
  }
  auto ca_key = ParseKey(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto ca_cert = ParseCert(ca.certificate_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  return Issue(public_key, ca_cert->get(), ca_key->get(), request, /*ca=*/false);
}

absl::Status VerifyIssuedBy(const std::string& ca_pem, const std::string& certificate_pem,
                            CertificatePurpose purpose) {
  auto ca = ParseCert(ca_pem);
  if (!ca.ok()) return ca.status();
  auto cert = ParseCert(certificate_pem);
  if (!cert.ok()) return absl::PermissionDeniedError(cert.status().message());
  Store store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr);
  X509_STORE_CTX_set_purpose(
      ctx.get(), purpose == CertificatePurpose::kTlsClient ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::PermissionDeniedError(X509_verify_cert_error_string(err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CommonName(const std::string& certificate_pem) {
  auto cert = ParseCert(certificate_pem);
  if (!cert.ok()) return cert.status();
  X509_NAME* name = X509_get_subject_name(cert->get());
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return absl::InvalidArgumentError("certificate has no common name");
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return absl::InvalidArgumentError("certificate common name is not text");
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

absl::StatusOr<std::string> Fingerprint(const std::string& certificate_pem) {
  auto cert = ParseCert(certificate_pem);
  if (!cert.ok()) return cert.status();
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert->get(), &der);
  if (n <= 0) return absl::InternalError(OpenSslError("encoding the certificate"));
  std::string out = Sha256Hex(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::vector<std::string>> SubjectAltNames(const std::string& certificate_pem) {
  auto cert = ParseCert(certificate_pem);
  if (!cert.ok()) return cert.status();
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (name->type == GEN_IPADD) {
      char* text = i2s_ASN1_OCTET_STRING(nullptr, name->d.iPAddress);
      // i2s gives hex bytes; an IPv4 address reads better dotted.
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      if (ASN1_STRING_length(ip) == 4) {
        const unsigned char* b = ASN1_STRING_get0_data(ip);
        out.push_back(absl::StrCat("IP:", b[0], ".", b[1], ".", b[2], ".", b[3]));
      } else {
        out.push_back(absl::StrCat("IP:", text == nullptr ? "" : text));
      }
      OPENSSL_free(text);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

absl::StatusOr<absl::Duration> TimeLeft(const std::string& certificate_pem) {
  auto cert = ParseCert(certificate_pem);
  if (!cert.ok()) return cert.status();
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert->get())) != 1) {
    return absl::InvalidArgumentError("certificate has no readable expiry");
  }
  return absl::Hours(24) * days + absl::Seconds(seconds);
}

}  // namespace dockyard
