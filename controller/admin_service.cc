#include "controller/admin_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"

namespace dockyard {

grpc::ServerUnaryReactor* AdminServiceImpl::AsAdmin(grpc::CallbackServerContext* context, std::string action,
                                                    std::function<absl::Status(const Caller&)> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_ADMIN, action);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  pool_->Post([reactor, work = std::move(work), action = std::move(action), caller = *caller,
               peer = context->peer()] {
    absl::Status status = work(caller);
    AuditLine(action, caller.Describe(), peer, status);
    reactor->Finish(ToGrpcStatus(status));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::WithIdentity(grpc::CallbackServerContext* context, std::string action,
                                                         std::function<absl::Status(IdentityStore&)> work) {
  IdentityStore* identity = core_->identity();
  return AsAdmin(context, std::move(action), [identity, work = std::move(work)](const Caller&) {
    if (identity == nullptr) {
      return absl::FailedPreconditionError("this controller runs with --insecure: there are no tokens or enrolments");
    }
    return work(*identity);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateEnrolToken(grpc::CallbackServerContext* context,
                                                             const v1::CreateEnrolTokenRequest* request,
                                                             v1::SecretResponse* response) {
  const int uses = request->uses() == 0 ? 1 : request->uses();
  const absl::Duration ttl = request->ttl_ms() == 0 ? absl::Hours(1) : absl::Milliseconds(request->ttl_ms());
  return WithIdentity(context, absl::StrCat("CreateEnrolToken uses=", uses, " ttl=", absl::FormatDuration(ttl)),
                 [=](IdentityStore& identity) {
                   auto secret = identity.CreateEnrolToken(uses, ttl);
                   if (secret.ok()) *response = *std::move(secret);
                   return secret.status();
                 });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeAgent(grpc::CallbackServerContext* context,
                                                        const v1::RevokeAgentRequest* request,
                                                        v1::RevokeAgentResponse* response) {
  ControllerCore* core = core_;
  return WithIdentity(context, absl::StrCat("RevokeAgent ", request->name()), [=](IdentityStore&) {
    auto lost = core->RevokeAgent(request->name());
    if (lost.ok()) response->set_requeued(*lost);
    return lost.status();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(grpc::CallbackServerContext* context,
                                                        const v1::CreateTokenRequest* request,
                                                        v1::SecretResponse* response) {
  return WithIdentity(context, absl::StrCat("CreateToken role=", RoleName(request->role()), " name=", request->name()),
                 [=](IdentityStore& identity) {
                   auto secret = identity.CreateToken(request->role(), request->name());
                   if (secret.ok()) *response = *std::move(secret);
                   return secret.status();
                 });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTokens(grpc::CallbackServerContext* context,
                                                       const v1::ListTokensRequest*,
                                                       v1::ListTokensResponse* response) {
  return WithIdentity(context, "ListTokens", [=](IdentityStore& identity) {
    for (v1::TokenInfo& token : identity.ListTokens()) *response->add_tokens() = std::move(token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(grpc::CallbackServerContext* context,
                                                        const v1::RevokeTokenRequest* request,
                                                        v1::RevokeTokenResponse*) {
  return WithIdentity(context, absl::StrCat("RevokeToken ", request->id()),
                 [=](IdentityStore& identity) { return identity.RevokeToken(request->id()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetSecret(grpc::CallbackServerContext* context,
                                                      const v1::SetSecretRequest* request,
                                                      v1::SetSecretResponse* response) {
  SecretStore* secrets = &core_->secrets();
  // The audit line names the secret, never its value.
  return AsAdmin(context, absl::StrCat("SetSecret ", request->name()), [=](const Caller& caller) {
    auto replaced = secrets->Set(request->name(), request->value(), caller.Describe());
    if (replaced.ok()) response->set_replaced(*replaced);
    return replaced.status();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListSecrets(grpc::CallbackServerContext* context,
                                                        const v1::ListSecretsRequest*,
                                                        v1::ListSecretsResponse* response) {
  SecretStore* secrets = &core_->secrets();
  return AsAdmin(context, "ListSecrets", [=](const Caller&) {
    for (v1::SecretInfo& info : secrets->List()) *response->add_secrets() = std::move(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::DeleteSecret(grpc::CallbackServerContext* context,
                                                         const v1::DeleteSecretRequest* request,
                                                         v1::DeleteSecretResponse*) {
  SecretStore* secrets = &core_->secrets();
  return AsAdmin(context, absl::StrCat("DeleteSecret ", request->name()),
                 [=](const Caller&) { return secrets->Delete(request->name()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CollectGarbage(grpc::CallbackServerContext* context,
                                                           const v1::CollectGarbageRequest* request,
                                                           v1::CollectGarbageResponse* response) {
  ControllerCore* core = core_;
  const bool dry_run = request->dry_run();
  return AsAdmin(context, absl::StrCat("CollectGarbage dry_run=", dry_run), [=](const Caller&) {
    auto report = core->CollectGarbage(dry_run);
    if (!report.ok()) return report.status();
    for (const std::string& run : report->runs) response->add_runs(run);
    response->set_blobs(report->blobs);
    response->set_blob_bytes(report->blob_bytes);
    response->set_dry_run(dry_run);
    return absl::OkStatus();
  });
}

}  // namespace dockyard
