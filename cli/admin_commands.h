// The `dockyard` CLI's administration commands (role admin): enrolment tokens for
// new agents, revoking agents, client tokens, pipeline secrets. Secrets are printed once, alone on
// stdout, so `dockyard tokens create ... > ci.token` stores exactly the token.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "cli/client.h"

namespace dockyard {

// `dockyard agents enrol [--uses=N] [--ttl=1h]`
int EnrolToken(DockyardClient& client, int uses, absl::Duration ttl, std::ostream& out, std::ostream& err);
// `dockyard agents revoke NAME`
int RevokeAgent(DockyardClient& client, const std::string& name, std::ostream& out, std::ostream& err);
// `dockyard tokens create --role=R [--name=N]`
int CreateToken(DockyardClient& client, const std::string& role, const std::string& name, std::ostream& out,
                std::ostream& err);
// `dockyard tokens list`
int ListTokens(DockyardClient& client, std::ostream& out, std::ostream& err);
// `dockyard tokens revoke ID|NAME`
int RevokeToken(DockyardClient& client, const std::string& id, std::ostream& out, std::ostream& err);
// `dockyard secrets set NAME`: the value is all of `in` (a terminal or a pipe, never
// an argument, so it is never in `ps` or a shell history) less one final newline.
int SetSecret(DockyardClient& client, const std::string& name, std::istream& in, std::ostream& out,
              std::ostream& err);
// `dockyard secrets list`: names and when they were set, never values.
int ListSecrets(DockyardClient& client, std::ostream& out, std::ostream& err);
// `dockyard secrets delete NAME`
int DeleteSecret(DockyardClient& client, const std::string& name, std::ostream& out, std::ostream& err);

}  // namespace dockyard
