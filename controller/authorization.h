// Authorisation per call: which role a client call needs, which agent an agent
// call comes from. Refusals are UNAUTHENTICATED (no or bad credentials) or
// PERMISSION_DENIED (not allowed), each with a reason the caller can act on and
// one audit line in the controller log (who, what, why; never a secret). With
// security off (--insecure) everyone may do everything.
#pragma once

#include <string_view>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "controller/identity_store.h"

namespace dockyard {

// One audit line in the controller log: `who` did (or was refused) `action` from
// `peer`. "allowed", "refused: why" (UNAUTHENTICATED, PERMISSION_DENIED) or
// "failed: why". Never give it a secret.
void AuditLine(std::string_view action, const std::string& who, const std::string& peer,
               const absl::Status& outcome);

class Authorizer {
 public:
  // `identity` null: security is off. Otherwise it must outlive the authorizer.
  explicit Authorizer(const IdentityStore* identity) : identity_(identity) {}

  bool enabled() const { return identity_ != nullptr; }
  // The caller, when its token has at least `role`. Fast: memory only.
  absl::StatusOr<Caller> RequireRole(const grpc::CallbackServerContext& context, v1::Role role,
                                     std::string_view action) const;
  // The enrolled agent whose certificate this call came with. With security off,
  // a caller of kind kSecurityOff and no name (the agent is taken at its word).
  absl::StatusOr<Caller> RequireAgent(const grpc::CallbackServerContext& context, std::string_view action) const;
  // A refusal or a consequential action, as one audit line (none with security off).
  void Audit(const grpc::CallbackServerContext& context, const Caller& caller, std::string_view action,
             const absl::Status& outcome) const;

 private:
  const IdentityStore* identity_;
};

}  // namespace dockyard
