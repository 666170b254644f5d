#include "common/x509.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dockyard {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

KeyAndCertificate Ca(const std::string& name) {
  auto ca = NewCertificateAuthority(name, absl::Hours(24));
  EXPECT_TRUE(ca.ok()) << ca.status();
  return *ca;
}

CertificateRequest Client(const std::string& name) {
  CertificateRequest request;
  request.common_name = name;
  request.client = true;
  return request;
}

TEST(X509, CertificateFromACsrNamesTheAgentAndVerifiesAgainstItsCa) {
  const KeyAndCertificate ca = Ca("test CA");
  auto key = NewPrivateKeyPem();
  ASSERT_TRUE(key.ok());
  // What the CSR asks for is ignored: the certificate says what the request says.
  auto csr = NewCsrPem(*key, "what-the-agent-asked-for");
  ASSERT_TRUE(csr.ok());
  auto cert = IssueForCsr(ca, *csr, Client("builder-1"));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(*CommonName(*cert), "builder-1");
  EXPECT_TRUE(VerifyIssuedBy(ca.certificate_pem, *cert, CertificatePurpose::kTlsClient).ok());
  // A client certificate is no server certificate.
  EXPECT_FALSE(VerifyIssuedBy(ca.certificate_pem, *cert, CertificatePurpose::kTlsServer).ok());
}

TEST(X509, CertificateOfAnotherCaIsPermissionDenied) {
  const KeyAndCertificate ours = Ca("ours");
  const KeyAndCertificate theirs = Ca("theirs");
  auto key = NewPrivateKeyPem();
  auto cert = IssueForKey(theirs, *key, Client("builder-1"));
  ASSERT_TRUE(cert.ok());
  absl::Status st = VerifyIssuedBy(ours.certificate_pem, *cert, CertificatePurpose::kTlsClient);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
}

TEST(X509, CsrNotSignedByItsOwnKeyIsRefused) {
  const KeyAndCertificate ca = Ca("ca");
  auto key = NewPrivateKeyPem();
  std::string csr = *NewCsrPem(*key, "x");
  // Flip a character inside the base64 body: the signature no longer matches.
  const size_t pos = csr.find('\n', csr.find("REQUEST-----")) + 40;
  csr[pos] = csr[pos] == 'A' ? 'B' : 'A';
  EXPECT_EQ(IssueForCsr(ca, csr, Client("x")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IssueForCsr(ca, "not a csr", Client("x")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(X509, AgentNamesLongerThanSixtyFourCharactersFitTheCommonName) {
  const KeyAndCertificate ca = Ca("ca");
  const std::string name(120, 'a');
  auto key = NewPrivateKeyPem();
  auto cert = IssueForCsr(ca, *NewCsrPem(*key, name), Client(name));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(*CommonName(*cert), name);
  EXPECT_TRUE(VerifyIssuedBy(ca.certificate_pem, *cert, CertificatePurpose::kTlsClient).ok());
}

TEST(X509, ServerCertificateCarriesItsNamesAndExpiry) {
  const KeyAndCertificate ca = Ca("ca");
  CertificateRequest request;
  request.common_name = "controller";
  request.server = true;
  request.dns_names = {"localhost", "ci.example"};
  request.ip_addresses = {"127.0.0.1"};
  request.validity = absl::Hours(48);
  auto key = NewPrivateKeyPem();
  auto cert = IssueForKey(ca, *key, request);
  ASSERT_TRUE(cert.ok());
  auto names = SubjectAltNames(*cert);
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, Contains("DNS:ci.example"));
  EXPECT_THAT(*names, Contains("IP:127.0.0.1"));
  auto left = TimeLeft(*cert);
  ASSERT_TRUE(left.ok());
  EXPECT_GT(*left, absl::Hours(47));
  EXPECT_LE(*left, absl::Hours(48));
  EXPECT_TRUE(VerifyIssuedBy(ca.certificate_pem, *cert, CertificatePurpose::kTlsServer).ok());
  EXPECT_EQ(Fingerprint(*cert)->size(), 64u);
}

}  // namespace
}  // namespace dockyard
