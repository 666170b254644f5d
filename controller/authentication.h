// Authentication at the door: a gRPC AuthMetadataProcessor that runs before any
// handler, on gRPC's own threads (it may block, our reactions may not). It refuses
// a call whose client certificate is not an enrolled, unrevoked agent's
// certificate from this controller's CA, or whose bearer token is unknown or
// revoked, with UNAUTHENTICATED and a reason the caller can act on, and writes
// one audit line for it. Calls with neither pass through: the handler decides
// (only enrolment is open to them).
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include "controller/identity_store.h"

namespace dockyard {

// The auth-context property naming the enrolled agent of a connection.
inline constexpr char kAgentProperty[] = "dockyard.agent";
// The gRPC property holding the peer's certificate (PEM).
inline constexpr char kPeerCertificateProperty[] = "x509_pem_cert";

class CallerAuthenticator final : public grpc::AuthMetadataProcessor {
 public:
  // `identity` must outlive the server.
  explicit CallerAuthenticator(const IdentityStore* identity) : identity_(identity) {}

  bool IsBlocking() const override { return true; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata, OutputMetadata* response_metadata) override;

 private:
  const IdentityStore* identity_;
};

// The bearer token in a call's metadata ("authorization: Bearer <token>"), or "".
std::string_view BearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

}  // namespace dockyard
