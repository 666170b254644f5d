#include "controller/authentication.h"

#include "absl/strings/match.h"
#include "common/logging.h"

namespace dockyard {

std::string_view BearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (!value.starts_with(kBearer)) return {};
  return value.substr(kBearer.size());
}

grpc::Status CallerAuthenticator::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                          OutputMetadata*, OutputMetadata*) {
  // A connection carries one certificate: its agent is the same for every call on
  // it, but revocation is checked on every call.
  std::vector<grpc::string_ref> certificate = context->FindPropertyValues(kPeerCertificateProperty);
  if (!certificate.empty()) {
    auto caller = identity_->AuthenticateAgent(std::string(certificate[0].data(), certificate[0].size()));
    if (!caller.ok()) {
      Logger("controller")->warn("audit: refused a client certificate: {}", std::string(caller.status().message()));
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(caller.status().message()));
    }
    if (context->FindPropertyValues(kAgentProperty).empty()) context->AddProperty(kAgentProperty, caller->name);
  }
  const std::string_view token = BearerToken(auth_metadata);
  if (!token.empty()) {
    auto caller = identity_->AuthenticateToken(token);
    if (!caller.ok()) {
      Logger("controller")->warn("audit: refused a client token: {}", std::string(caller.status().message()));
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(caller.status().message()));
    }
  }
  return grpc::Status::OK;
}

}  // namespace dockyard
