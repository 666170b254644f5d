// How a client (the CLI, an agent) proves itself to the controller and checks the
// controller's certificate: TLS against the controller's CA, plus a client
// certificate (agents) or a bearer token (the CLI). `insecure` is plain text and
// must be asked for explicitly.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace dockyard {

struct ClientSecurity {
  bool insecure = false;
  std::string ca_pem;           // trusts the controller's certificate
  std::string certificate_pem;  // agents: their client certificate...
  std::string key_pem;          // ...and its key
  std::string token;            // the CLI: sent as "authorization: Bearer <token>"
};

// Channel credentials for `security`. The token, if any, rides as call credentials,
// which gRPC only ever sends over TLS.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientSecurity& security);

// A status a user can act on when a call failed before the controller could
// answer: for UNAVAILABLE, a hint about the TLS set-up that most often causes it.
absl::Status ExplainConnectFailure(const absl::Status& status, const ClientSecurity& security);

}  // namespace dockyard
