// AdminService over the callback API: enrolment tokens, agent revocation, client
// tokens and pipeline secrets. Every call needs role admin and leaves an audit line; the work (disk,
// randomness, re-queuing) runs on the WorkerPool.
#pragma once

#include "common/worker_pool.h"
#include "controller/authorization.h"
#include "controller/controller_core.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard {

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  // `core`, `pool` and `authorizer` must outlive the server.
  AdminServiceImpl(ControllerCore* core, WorkerPool* pool, const Authorizer* authorizer)
      : core_(core), pool_(pool), authorizer_(authorizer) {}

  grpc::ServerUnaryReactor* CreateEnrolToken(grpc::CallbackServerContext* context,
                                             const v1::CreateEnrolTokenRequest* request,
                                             v1::SecretResponse* response) override;
  grpc::ServerUnaryReactor* RevokeAgent(grpc::CallbackServerContext* context, const v1::RevokeAgentRequest* request,
                                        v1::RevokeAgentResponse* response) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* context, const v1::CreateTokenRequest* request,
                                        v1::SecretResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* context, const v1::ListTokensRequest* request,
                                       v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* context, const v1::RevokeTokenRequest* request,
                                        v1::RevokeTokenResponse* response) override;
  grpc::ServerUnaryReactor* SetSecret(grpc::CallbackServerContext* context, const v1::SetSecretRequest* request,
                                      v1::SetSecretResponse* response) override;
  grpc::ServerUnaryReactor* ListSecrets(grpc::CallbackServerContext* context, const v1::ListSecretsRequest* request,
                                        v1::ListSecretsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSecret(grpc::CallbackServerContext* context, const v1::DeleteSecretRequest* request,
                                         v1::DeleteSecretResponse* response) override;
  grpc::ServerUnaryReactor* CollectGarbage(grpc::CallbackServerContext* context,
                                           const v1::CollectGarbageRequest* request,
                                           v1::CollectGarbageResponse* response) override;

 private:
  // Checks role admin, then runs `work` on the pool and finishes with its status
  // (audited under `action`, which must never hold a secret).
  grpc::ServerUnaryReactor* AsAdmin(grpc::CallbackServerContext* context, std::string action,
                                    std::function<absl::Status(const Caller&)> work);
  // AsAdmin for what only exists with security on.
  grpc::ServerUnaryReactor* WithIdentity(grpc::CallbackServerContext* context, std::string action,
                                         std::function<absl::Status(IdentityStore&)> work);

  ControllerCore* core_;
  WorkerPool* pool_;
  const Authorizer* authorizer_;
};

}  // namespace dockyard
