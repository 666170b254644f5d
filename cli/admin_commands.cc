#include "cli/admin_commands.h"

#include <iterator>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "common/roles.h"

namespace dockyard {

int EnrolToken(DockyardClient& client, int uses, absl::Duration ttl, std::ostream& out, std::ostream& err) {
  auto secret = client.CreateEnrolToken(uses, ttl);
  if (!secret.ok()) return ReportError(secret.status(), err);
  out << secret->secret() << "\n";
  err << "enrolment token " << secret->id() << ": " << uses << " use(s), valid until "
      << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(secret->expires_unix_ms()), absl::UTCTimeZone())
      << ". Put it in a file (mode 0600) and start each new agent once with\n"
      << "  dockyard-agent --enrol_token_file=FILE --ca_file=<controller data_dir>/tls/ca.crt ...\n";
  return kExitOk;
}

int RevokeAgent(DockyardClient& client, const std::string& name, std::ostream& out, std::ostream& err) {
  auto requeued = client.RevokeAgent(name);
  if (!requeued.ok()) return ReportError(requeued.status(), err);
  out << "agent " << name << " revoked: its session is closed, its certificate refused from now on";
  if (*requeued > 0) out << ", " << *requeued << " running stage(s) re-queued";
  out << "\n";
  return kExitOk;
}

int CreateToken(DockyardClient& client, const std::string& role, const std::string& name, std::ostream& out,
                std::ostream& err) {
  const v1::Role parsed = ParseRole(role);
  if (parsed == v1::ROLE_UNSPECIFIED) {
    err << "dockyard: --role must be read, submit or admin (got \"" << role << "\")\n";
    return kExitBadInput;
  }
  auto secret = client.CreateToken(parsed, name);
  if (!secret.ok()) return ReportError(secret.status(), err);
  out << secret->secret() << "\n";
  err << "token " << secret->id() << " (role " << role
      << ") created; it is shown only now. Give it to its user as DOCKYARD_TOKEN or a --token_file.\n";
  return kExitOk;
}

int ListTokens(DockyardClient& client, std::ostream& out, std::ostream& err) {
  auto tokens = client.ListTokens();
  if (!tokens.ok()) return ReportError(tokens.status(), err);
  out << absl::StrFormat("%-10s %-24s %-7s %-20s %s\n", "ID", "NAME", "ROLE", "CREATED", "STATE");
  for (const v1::TokenInfo& token : *tokens) {
    out << absl::StrFormat(
        "%-10s %-24s %-7s %-20s %s\n", token.id(), token.name(), RoleName(token.role()),
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(token.created_unix_ms()), absl::UTCTimeZone()),
        token.revoked() ? "revoked" : "active");
  }
  return kExitOk;
}

int RevokeToken(DockyardClient& client, const std::string& id, std::ostream& out, std::ostream& err) {
  if (absl::Status st = client.RevokeToken(id); !st.ok()) return ReportError(st, err);
  out << "token " << id << " revoked\n";
  return kExitOk;
}

int SetSecret(DockyardClient& client, const std::string& name, std::istream& in, std::ostream& out,
              std::ostream& err) {
  std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // `echo value | dockyard secrets set NAME` must not store the newline echo adds.
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  auto replaced = client.SetSecret(name, value);
  if (!replaced.ok()) return ReportError(replaced.status(), err);
  out << "secret " << name << (*replaced ? " replaced" : " set") << " (" << value.size()
      << " bytes); stages get it with `secrets: [" << name << "]`\n";
  return kExitOk;
}

int ListSecrets(DockyardClient& client, std::ostream& out, std::ostream& err) {
  auto secrets = client.ListSecrets();
  if (!secrets.ok()) return ReportError(secrets.status(), err);
  out << absl::StrFormat("%-32s %-20s %s\n", "NAME", "UPDATED", "BY");
  for (const v1::SecretInfo& secret : *secrets) {
    out << absl::StrFormat(
        "%-32s %-20s %s\n", secret.name(),
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(secret.updated_unix_ms()), absl::UTCTimeZone()),
        secret.updated_by());
  }
  return kExitOk;
}

int DeleteSecret(DockyardClient& client, const std::string& name, std::ostream& out, std::ostream& err) {
  if (absl::Status st = client.DeleteSecret(name); !st.ok()) return ReportError(st, err);
  out << "secret " << name << " deleted\n";
  return kExitOk;
}

}  // namespace dockyard
