// A channel to "the controller" as users name it: one host:port, or a leader and its
// standbys comma-separated (a:7420,b:7420). Several become one gRPC target whose
// addresses are tried in turn (pick_first): only the leading controller listens, so
// the channel reaches it, and reaches the next one after a failover by itself. Host
// names are resolved once, here. TLS checks every controller's certificate against
// the first name given, so each controller of a deployment carries that name
// (--advertise_name).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace dockyard {

std::shared_ptr<grpc::Channel> ControllerChannel(const std::string& addresses,
                                                 const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                                 grpc::ChannelArguments args = {});

// The gRPC target for `addresses` (as is for one; "ipv4:…"/"ipv6:…" for several).
// INVALID_ARGUMENT naming an entry that is not host:port or does not resolve.
absl::StatusOr<std::string> ControllerTarget(const std::string& addresses);

}  // namespace dockyard
