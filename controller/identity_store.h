// Who may talk to the controller: client tokens with roles, one-time enrolment
// tokens for new agents, and the agent names bound to the certificates issued to
// them. Secrets are random, shown once and kept only as sha256; every record is
// saved in the state store, so a restarted controller (or, later, a standby on the
// same database) knows the same identities. Thread-safe. Authenticate* only read
// memory and may run on gRPC threads; the rest writes to disk.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/roles.h"
#include "controller/certificate_authority.h"
#include "controller/state_store.h"
#include "dockyard/v1/agent.pb.h"
#include "dockyard/v1/run.pb.h"
#include "dockyard/v1/state.pb.h"

namespace dockyard {

// Who made a call, as authentication established it.
struct Caller {
  enum class Kind { kNobody, kToken, kAgent, kSecurityOff };
  Kind kind = Kind::kNobody;
  std::string id;    // token id, or agent name
  std::string name;  // token name, or agent name
  v1::Role role = v1::ROLE_UNSPECIFIED;

  // For audit lines and errors: "token ci-bot (submit)", "agent builder-1", ...
  std::string Describe() const;
};


class IdentityStore {
 public:
  // `state` and `ca` must outlive the store; `contents` are the saved records.
  IdentityStore(StateStore* state, const CertificateAuthority* ca, const StateStore::Contents& contents);

  // On a controller without a usable admin token, creates one and writes it to
  // `path` (0600), as Jenkins does with its initial admin password.
  absl::Status EnsureAdminToken(const std::string& path);

  // The holder of `token`. UNAUTHENTICATED, saying why, for an unknown or revoked one.
  absl::StatusOr<Caller> AuthenticateToken(std::string_view token) const;
  // The enrolled agent presenting `certificate_pem`. UNAUTHENTICATED for a
  // certificate of another CA, an expired, revoked or superseded one.
  absl::StatusOr<Caller> AuthenticateAgent(const std::string& certificate_pem) const;

  absl::StatusOr<v1::SecretResponse> CreateToken(v1::Role role, const std::string& name);
  std::vector<v1::TokenInfo> ListTokens() const;
  absl::Status RevokeToken(const std::string& id_or_name);
  absl::StatusOr<v1::SecretResponse> CreateEnrolToken(int uses, absl::Duration ttl);
  // Trades an enrolment token and a CSR for a certificate bound to the agent name.
  // UNAUTHENTICATED for a bad, used-up or expired token; ALREADY_EXISTS for a name
  // enrolled with another certificate that was not revoked.
  absl::StatusOr<v1::EnrolResponse> Enrol(const v1::EnrolRequest& request);
  // Refuses the agent's certificate from now on. NOT_FOUND for an unknown name.
  absl::Status RevokeAgent(const std::string& name);
  bool AgentRevoked(const std::string& name) const;

 private:
  absl::StatusOr<v1::SecretResponse> CreateTokenLocked(v1::Role role, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  StateStore* const state_;
  const CertificateAuthority* const ca_;

  mutable absl::Mutex mu_;
  std::map<std::string, v1::TokenRecord> tokens_ ABSL_GUARDED_BY(mu_);        // by id
  std::map<std::string, std::string> token_by_hash_ ABSL_GUARDED_BY(mu_);     // sha256 -> id
  std::map<std::string, v1::EnrolTokenRecord> enrol_tokens_ ABSL_GUARDED_BY(mu_);  // by sha256
  std::map<std::string, v1::EnrolledAgentRecord> agents_ ABSL_GUARDED_BY(mu_);     // by name
};

}  // namespace dockyard
