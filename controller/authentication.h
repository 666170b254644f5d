// Authentication of agents at the door: a gRPC AuthMetadataProcessor that runs
// before any handler, on gRPC's own threads (it may block, our reactions may not).
// It refuses a call whose client certificate is not an enrolled, unrevoked agent's
// certificate from this controller's CA with UNAUTHENTICATED and a reason the
// caller can act on, writes one audit line for it, and names the connection's
// agent for the handlers. Bearer tokens are the handlers' business (Authorizer):
// they are per call, and each handler needs the caller's role anyway.
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

}  // namespace dockyard
