#include "common/client_security.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dockyard {

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientSecurity& security) {
  if (security.insecure) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = security.ca_pem;
  tls.pem_private_key = security.key_pem;
  tls.pem_cert_chain = security.certificate_pem;
  std::shared_ptr<grpc::ChannelCredentials> channel = grpc::SslCredentials(tls);
  if (security.token.empty()) return channel;
  return grpc::CompositeChannelCredentials(channel, grpc::AccessTokenCredentials(security.token));
}

absl::Status ExplainConnectFailure(const absl::Status& status, const ClientSecurity& security) {
  if (!absl::IsUnavailable(status)) return status;
  const std::string message(status.message());
  if (security.insecure) {
    return absl::UnavailableError(absl::StrCat(
        message, " (plain text was asked for with --insecure; a controller started without --insecure "
                 "speaks only TLS: drop --insecure and pass its CA with --ca_file or DOCKYARD_CA_FILE)"));
  }
  if (absl::StrContains(message, "ssl") || absl::StrContains(message, "SSL") ||
      absl::StrContains(message, "handshake") || absl::StrContains(message, "certificate")) {
    return absl::UnavailableError(absl::StrCat(
        message, " (TLS failed: is the CA file the controller's <data_dir>/tls/ca.crt, and does the "
                 "address match a name in its certificate? A controller started with --insecure "
                 "needs --insecure here too)"));
  }
  return status;
}

}  // namespace dockyard
