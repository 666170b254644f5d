// X.509 with OpenSSL, as much as Dockyard's trust model needs: EC P-256 keys, a
// self-signed CA, certificates it issues (the controller's server certificate and
// agents' client certificates from their CSRs), and checking that a certificate
// was issued by that CA. Keys and certificates travel as PEM strings.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dockyard {

struct KeyAndCertificate {
  std::string key_pem;
  std::string certificate_pem;
};

// What an issued certificate says about its holder.
struct CertificateRequest {
  std::string common_name;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  bool server = false;                    // extendedKeyUsage serverAuth
  bool client = false;                    // extendedKeyUsage clientAuth
  absl::Duration validity = absl::Hours(24 * 365);
};

// A fresh EC P-256 private key (PKCS#8 PEM).
absl::StatusOr<std::string> NewPrivateKeyPem();
// A PKCS#10 request for `common_name`, signed with `key_pem`.
absl::StatusOr<std::string> NewCsrPem(const std::string& key_pem, const std::string& common_name);
// A self-signed CA certificate and its key.
absl::StatusOr<KeyAndCertificate> NewCertificateAuthority(const std::string& common_name,
                                                          absl::Duration validity);
// A certificate for `key_pem`'s public key, issued by `ca`.
absl::StatusOr<std::string> IssueForKey(const KeyAndCertificate& ca, const std::string& key_pem,
                                        const CertificateRequest& request);
// A certificate for the public key in `csr_pem`, issued by `ca`. Only the CSR's key
// is taken (after checking its self-signature); everything the certificate says
// comes from `request`, never from the CSR. INVALID_ARGUMENT for a bad CSR.
absl::StatusOr<std::string> IssueForCsr(const KeyAndCertificate& ca, const std::string& csr_pem,
                                        const CertificateRequest& request);

enum class CertificatePurpose { kTlsClient, kTlsServer };
// OK when `certificate_pem` chains to `ca_pem`, is valid now, and may be used for
// `purpose`. PERMISSION_DENIED (with OpenSSL's reason) otherwise.
absl::Status VerifyIssuedBy(const std::string& ca_pem, const std::string& certificate_pem,
                            CertificatePurpose purpose);
// The subject's CN.
absl::StatusOr<std::string> CommonName(const std::string& certificate_pem);
// sha256 of the DER encoding, hex: what names a certificate in records and revocations.
absl::StatusOr<std::string> Fingerprint(const std::string& certificate_pem);
// The subjectAltName entries, as "DNS:name" / "IP:addr".
absl::StatusOr<std::vector<std::string>> SubjectAltNames(const std::string& certificate_pem);
// Seconds until the certificate expires (negative when it has).
absl::StatusOr<absl::Duration> TimeLeft(const std::string& certificate_pem);

}  // namespace dockyard
