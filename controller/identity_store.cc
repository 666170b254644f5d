#include "controller/identity_store.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/names.h"
#include "common/sha256.h"

namespace dockyard {
namespace {

// Prefixes make a leaked secret recognisable to secret scanners and to people.
constexpr std::string_view kTokenPrefix = "dyt_";
constexpr std::string_view kEnrolPrefix = "dye_";

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  return absl::BytesToHexString(raw);
}

int64_t UnixMs(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

std::string Caller::Describe() const {
  switch (kind) {
    case Kind::kToken: return absl::StrCat("token ", name, " (", RoleName(role), ")");
    case Kind::kAgent: return absl::StrCat("agent ", name);
    case Kind::kSecurityOff: return "anyone (--insecure)";
    case Kind::kNobody: break;
  }
  return "an unauthenticated caller";
}

IdentityStore::IdentityStore(StateStore* state, const CertificateAuthority* ca, const StateStore::Contents& contents)
    : state_(state), ca_(ca) {
  absl::MutexLock lock(&mu_);
  for (const v1::TokenRecord& token : contents.tokens) {
    tokens_[token.info().id()] = token;
    token_by_hash_[token.sha256()] = token.info().id();
  }
  for (const v1::EnrolTokenRecord& token : contents.enrol_tokens) enrol_tokens_[token.sha256()] = token;
  for (const v1::EnrolledAgentRecord& agent : contents.enrolled_agents) agents_[agent.name()] = agent;
}

absl::Status IdentityStore::EnsureAdminToken(const std::string& path) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, token] : tokens_) {
    if (token.info().role() == v1::ROLE_ADMIN && !token.info().revoked()) return absl::OkStatus();
  }
  auto secret = CreateTokenLocked(v1::ROLE_ADMIN, "admin");
  if (!secret.ok()) return secret.status();
  if (absl::Status st = WriteFileAtomically(path, secret->secret() + "\n", 0600); !st.ok()) return st;
  Logger("controller")->info("created the first admin token (id {}) in {}", secret->id(), path);
  return absl::OkStatus();
}

absl::StatusOr<Caller> IdentityStore::AuthenticateToken(std::string_view token) const {
  if (!token.starts_with(kTokenPrefix)) {
    return absl::UnauthenticatedError(
        absl::StrCat("that is not a Dockyard client token (they start with ", std::string(kTokenPrefix), ")"));
  }
  const std::string hash = Sha256Hex(token);
  absl::MutexLock lock(&mu_);
  auto id = token_by_hash_.find(hash);  // by digest: lookup time says nothing about the secret
  if (id == token_by_hash_.end()) {
    return absl::UnauthenticatedError("token not recognised by this controller (mistyped, or from another one)");
  }
  const v1::TokenRecord& record = tokens_.at(id->second);
  if (record.info().revoked()) {
    return absl::UnauthenticatedError(absl::StrCat("token ", record.info().name(), " was revoked"));
  }
  Caller caller;
  caller.kind = Caller::Kind::kToken;
  caller.id = record.info().id();
  caller.name = record.info().name();
  caller.role = record.info().role();
  return caller;
}

absl::StatusOr<Caller> IdentityStore::AuthenticateAgent(const std::string& certificate_pem) const {
  if (absl::Status st = ca_->VerifyClient(certificate_pem); !st.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate not issued by this controller: ", std::string(st.message())));
  }
  auto name = CommonName(certificate_pem);
  auto fingerprint = Fingerprint(certificate_pem);
  if (!name.ok() || !fingerprint.ok()) return absl::UnauthenticatedError("unreadable client certificate");
  absl::MutexLock lock(&mu_);
  auto agent = agents_.find(*name);
  if (agent == agents_.end()) {
    return absl::UnauthenticatedError(absl::StrCat("no agent ", *name, " is enrolled"));
  }
  if (agent->second.cert_sha256() != *fingerprint) {
    return absl::UnauthenticatedError(
        absl::StrCat("this certificate for agent ", *name, " was replaced by a newer enrolment"));
  }
  if (agent->second.revoked()) {
    return absl::UnauthenticatedError(absl::StrCat("agent ", *name, " was revoked; enrol it again to use it"));
  }
  Caller caller;
  caller.kind = Caller::Kind::kAgent;
  caller.id = *name;
  caller.name = *name;
  return caller;
}

absl::StatusOr<v1::SecretResponse> IdentityStore::CreateToken(v1::Role role, const std::string& name) {
  if (role == v1::ROLE_UNSPECIFIED) return absl::InvalidArgumentError("a token needs a role: read, submit or admin");
  if (!name.empty() && !IsSafeName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("bad token name \"", name, "\" (letters, digits, . _ -)"));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [id, token] : tokens_) {
    if (!name.empty() && token.info().name() == name && !token.info().revoked()) {
      return absl::AlreadyExistsError(absl::StrCat("a token named ", name, " exists; revoke it first"));
    }
  }
  return CreateTokenLocked(role, name);
}

absl::StatusOr<v1::SecretResponse> IdentityStore::CreateTokenLocked(v1::Role role, const std::string& name) {
  const std::string secret = std::string(kTokenPrefix) + RandomHex(32);
  v1::TokenRecord record;
  record.mutable_info()->set_id(RandomHex(4));
  record.mutable_info()->set_name(name.empty() ? absl::StrCat("token-", record.info().id()) : name);
  record.mutable_info()->set_role(role);
  record.mutable_info()->set_created_unix_ms(UnixMs(absl::Now()));
  record.set_sha256(Sha256Hex(secret));
  if (absl::Status st = state_->SaveToken(record); !st.ok()) return st;
  tokens_[record.info().id()] = record;
  token_by_hash_[record.sha256()] = record.info().id();
  v1::SecretResponse response;
  response.set_secret(secret);
  response.set_id(record.info().id());
  return response;
}

std::vector<v1::TokenInfo> IdentityStore::ListTokens() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::TokenInfo> out;
  for (const auto& [id, token] : tokens_) out.push_back(token.info());
  return out;
}

absl::Status IdentityStore::RevokeToken(const std::string& id_or_name) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, token] : tokens_) {
    if (id != id_or_name && token.info().name() != id_or_name) continue;
    if (token.info().revoked()) continue;
    v1::TokenRecord revoked = token;
    revoked.mutable_info()->set_revoked(true);
    if (absl::Status st = state_->SaveToken(revoked); !st.ok()) return st;
    token = revoked;
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no live token with id or name \"", id_or_name, "\""));
}

absl::StatusOr<v1::SecretResponse> IdentityStore::CreateEnrolToken(int uses, absl::Duration ttl) {
  if (uses < 1 || uses > 10000) return absl::InvalidArgumentError("--uses must be 1..10000");
  if (ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("--ttl must be positive");
  const std::string secret = std::string(kEnrolPrefix) + RandomHex(32);
  const absl::Time now = absl::Now();
  v1::EnrolTokenRecord record;
  record.set_id(RandomHex(4));
  record.set_sha256(Sha256Hex(secret));
  record.set_uses_left(uses);
  record.set_created_unix_ms(UnixMs(now));
  record.set_expires_unix_ms(UnixMs(now + ttl));
  absl::MutexLock lock(&mu_);
  if (absl::Status st = state_->SaveEnrolToken(record); !st.ok()) return st;
  enrol_tokens_[record.sha256()] = record;
  v1::SecretResponse response;
  response.set_secret(secret);
  response.set_id(record.id());
  response.set_expires_unix_ms(record.expires_unix_ms());
  return response;
}

absl::StatusOr<v1::EnrolResponse> IdentityStore::Enrol(const v1::EnrolRequest& request) {
  if (!IsSafeName(request.name())) {
    return absl::InvalidArgumentError(absl::StrCat("bad agent name \"", request.name(), "\""));
  }
  const std::string hash = Sha256Hex(request.token());
  absl::MutexLock lock(&mu_);
  auto token = enrol_tokens_.find(hash);
  if (token == enrol_tokens_.end()) {
    return absl::UnauthenticatedError("enrolment token not recognised by this controller");
  }
  if (UnixMs(absl::Now()) >= token->second.expires_unix_ms()) {
    return absl::UnauthenticatedError(absl::StrCat("enrolment token ", token->second.id(), " has expired"));
  }
  if (token->second.uses_left() <= 0) {
    return absl::UnauthenticatedError(absl::StrCat("enrolment token ", token->second.id(), " is used up"));
  }
  auto existing = agents_.find(request.name());
  if (existing != agents_.end() && !existing->second.revoked()) {
    return absl::AlreadyExistsError(absl::StrCat("agent name ", request.name(),
                                                 " is enrolled with another certificate; choose another "
                                                 "name, or revoke it first (dockyard agents revoke ",
                                                 request.name(), ")"));
  }
  auto certificate = ca_->IssueAgentCertificate(request.name(), request.csr_pem());
  if (!certificate.ok()) return certificate.status();
  auto fingerprint = Fingerprint(*certificate);
  if (!fingerprint.ok()) return fingerprint.status();

  v1::EnrolTokenRecord used = token->second;
  used.set_uses_left(used.uses_left() - 1);
  v1::EnrolledAgentRecord agent;
  agent.set_name(request.name());
  agent.set_cert_sha256(*fingerprint);
  agent.set_enrolled_unix_ms(UnixMs(absl::Now()));
  // The use is spent first: a crash in between costs a use, never grants one twice.
  if (absl::Status st = state_->SaveEnrolToken(used); !st.ok()) return st;
  token->second = used;
  if (absl::Status st = state_->SaveEnrolledAgent(agent); !st.ok()) return st;
  agents_[agent.name()] = agent;

  v1::EnrolResponse response;
  response.set_certificate_pem(*certificate);
  response.set_ca_pem(ca_->ca_pem());
  return response;
}

absl::Status IdentityStore::RevokeAgent(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto agent = agents_.find(name);
  if (agent == agents_.end()) return absl::NotFoundError(absl::StrCat("no agent ", name, " is enrolled"));
  v1::EnrolledAgentRecord revoked = agent->second;
  revoked.set_revoked(true);
  if (absl::Status st = state_->SaveEnrolledAgent(revoked); !st.ok()) return st;
  agent->second = revoked;
  return absl::OkStatus();
}

bool IdentityStore::AgentRevoked(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto agent = agents_.find(name);
  return agent != agents_.end() && agent->second.revoked();
}

}  // namespace dockyard
