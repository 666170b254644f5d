#include "controller/authentication.h"

#include "common/logging.h"

namespace dockyard {

grpc::Status CallerAuthenticator::Process(const InputMetadata&, grpc::AuthContext* context, OutputMetadata*,
                                          OutputMetadata*) {
  // A connection carries one certificate: its agent is the same for every call on
  // it, but revocation is checked on every call.
  std::vector<grpc::string_ref> certificate = context->FindPropertyValues(kPeerCertificateProperty);
  if (!certificate.empty()) {
    auto caller = identity_->AuthenticateAgent(std::string(certificate[0].data(), certificate[0].size()));
    if (!caller.ok()) {
      // No call or peer is known here yet: the refusal is of the connection's certificate.
      Logger("controller")->warn("audit: refused a client certificate: {}", std::string(caller.status().message()));
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(caller.status().message()));
    }
    if (context->FindPropertyValues(kAgentProperty).empty()) context->AddProperty(kAgentProperty, caller->name);
  }
  return grpc::Status::OK;
}

}  // namespace dockyard
