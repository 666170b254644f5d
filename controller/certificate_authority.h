// The controller's certificate authority and server identity, kept in
// <data_dir>/tls: ca.crt, ca.key (0600), server.crt and server.key (0600). What is
// missing is created on start; the CA is never replaced (agents' certificates and
// every client's trust hang on it), the server certificate is re-issued when it
// no longer names every address clients use or is close to expiry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/x509.h"

namespace dockyard {

class CertificateAuthority {
 public:
  // `advertise_names` are the extra host names / IP addresses clients dial;
  // localhost, 127.0.0.1 and this host's name are always included. Blocking file
  // and crypto work: call at start-up.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> LoadOrCreate(
      const std::string& tls_dir, const std::vector<std::string>& advertise_names);

  const std::string& ca_pem() const { return ca_.certificate_pem; }
  const std::string& ca_path() const { return ca_path_; }
  const KeyAndCertificate& server() const { return server_; }

  // A client certificate for agent `name` from its CSR (CN = name, clientAuth only).
  absl::StatusOr<std::string> IssueAgentCertificate(const std::string& name, const std::string& csr_pem) const;
  // OK when this CA issued `certificate_pem` for client use and it is valid now;
  // PERMISSION_DENIED saying why otherwise.
  absl::Status VerifyClient(const std::string& certificate_pem) const;

 private:
  CertificateAuthority() = default;

  KeyAndCertificate ca_;
  KeyAndCertificate server_;
  std::string ca_path_;
};

}  // namespace dockyard
