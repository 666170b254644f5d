#include "controller/authorization.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "controller/authentication.h"

namespace dockyard {
namespace {

// The bearer token in a call's metadata ("authorization: Bearer <token>"), or "".
std::string_view BearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (!value.starts_with(kBearer)) return {};
  return value.substr(kBearer.size());
}

}  // namespace

absl::StatusOr<Caller> Authorizer::RequireRole(const grpc::CallbackServerContext& context, v1::Role role,
                                               std::string_view action) const {
  Caller caller;
  if (!enabled()) {
    caller.kind = Caller::Kind::kSecurityOff;
    caller.role = v1::ROLE_ADMIN;
    return caller;
  }
  const std::string_view token = BearerToken(context.client_metadata());
  absl::Status refused;
  if (token.empty()) {
    refused = absl::UnauthenticatedError(
        "no token: set DOCKYARD_TOKEN (or --token_file) to a token from `dockyard tokens create`");
  } else {
    auto who = identity_->AuthenticateToken(token);
    if (!who.ok()) {
      refused = who.status();
    } else {
      caller = *std::move(who);
      if (caller.role < role) {
        refused = absl::PermissionDeniedError(absl::StrCat("token ", caller.name, " lacks role ", RoleName(role),
                                                           " (it has ", RoleName(caller.role), ")"));
      }
    }
  }
  if (!refused.ok()) {
    Audit(context, caller, action, refused);
    return refused;
  }
  return caller;
}

absl::StatusOr<Caller> Authorizer::RequireAgent(const grpc::CallbackServerContext& context,
                                                std::string_view action) const {
  Caller caller;
  if (!enabled()) {
    caller.kind = Caller::Kind::kSecurityOff;
    return caller;
  }
  std::vector<grpc::string_ref> agent = context.auth_context()->FindPropertyValues(kAgentProperty);
  if (agent.empty()) {
    absl::Status refused = absl::UnauthenticatedError(
        "no agent certificate: enrol the agent first (dockyard-agent --enrol_token_file=F --ca_file=ca.crt)");
    Audit(context, caller, action, refused);
    return refused;
  }
  caller.kind = Caller::Kind::kAgent;
  caller.id = caller.name = std::string(agent[0].data(), agent[0].size());
  return caller;
}

void AuditLine(std::string_view action, const std::string& who, const std::string& peer,
               const absl::Status& outcome) {
  if (outcome.ok()) {
    Logger("controller")->info("audit: {} by {} from {}: allowed", action, who, peer);
    return;
  }
  const bool refused = absl::IsUnauthenticated(outcome) || absl::IsPermissionDenied(outcome);
  Logger("controller")->warn("audit: {} by {} from {}: {}: {}", action, who, peer, refused ? "refused" : "failed",
                             std::string(outcome.message()));
}

void Authorizer::Audit(const grpc::CallbackServerContext& context, const Caller& caller, std::string_view action,
                       const absl::Status& outcome) const {
  if (!enabled()) return;
  AuditLine(action, caller.Describe(), context.peer(), outcome);
}

}  // namespace dockyard
