#include "cli/help.h"

#include <map>

namespace dockyard {
namespace {

constexpr char kConnection[] = R"(Connection (every command):
  --controller=HOST:PORT   the controller (default: $DOCKYARD_CONTROLLER, else 127.0.0.1:7420)
  --ca_file=FILE           the controller's CA certificate (default: $DOCKYARD_CA_FILE)
  --token_file=FILE        a file holding your token (default: the token in $DOCKYARD_TOKEN);
                           never pass a token itself as a flag: flags show in `ps`
  --insecure               plain text, no token: only for a controller started with --insecure
)";

const std::map<std::string, std::string>& Commands() {
  static const auto* commands = new std::map<std::string, std::string>{
      {"run", R"(dockyard run FILE [flags]
  Checks the pipeline file, ships its source, submits it and follows it: every stage's
  live log with a stage prefix, then a summary table, then the artifacts into
  --artifacts-dir (verified by sha256; names several stages publish go to DIR/<stage>/,
  test reports to DIR/reports/<stage>/). Ctrl-C or SIGTERM cancels the run and follows
  it to its end (for at most --cancel_wait_seconds); a second one stops waiting.
  --artifacts-dir=DIR        where artifacts land (default target)
  --no-artifacts             do not download them
  --idempotency-key=KEY      submitting again with the same key (a retried or resumed CI
                             step) follows the run first submitted with it, from the start
  --detach                   print the run id once submitted and return (--json: as JSON)
  --junit=FILE               when the run ends, write a JUnit report: one testcase per stage
  --cancel_wait_seconds=N    after Ctrl-C/SIGTERM, how long to wait for the run to end (60)
  --max_pipeline_bytes=SIZE  the largest pipeline file accepted (4M)
  --max_stages=N             the most stages a pipeline file may have (1000)
)"},
      {"watch", R"(dockyard watch RUN [flags]
  Follows an existing run exactly like `run` does after submitting (the same flags:
  --artifacts-dir, --no-artifacts, --junit, --cancel_wait_seconds).
)"},
      {"status", R"(dockyard status RUN [--long] [--json]
  The run's state and each stage's state, attempt, agent and why it failed or waits;
  per stage and cache, the snapshot digest it started from and left (12 digits; whole
  with --long), and whether every stage started from what the one before it left.
  Exit code: 0 succeeded or still going, 1 failed, 5 cancelled.
)"},
      {"logs", R"(dockyard logs RUN STAGE [--follow] [--attempt=N] [--service=NAME]
  A stage's log (its current attempt unless --attempt); --follow until the attempt ends.
  With --service, the log of that service of the stage (kept once the stage ended,
  unless it was cancelled; at most the agent's --max_service_log_bytes).
)"},
      {"artifacts", R"(dockyard artifacts RUN [--dest=DIR] [--json]
  Lists the run's artifacts (stage, name, size, sha256), or fetches them into DIR.
)"},
      {"cancel", R"(dockyard cancel RUN
  Cancels the run: its containers are removed within seconds. Your own runs with role
  submit, any run with role admin.
)"},
      {"caches", R"(dockyard caches [--json]
  The keyed caches the controller keeps for runs on any host: cache, key, size, files,
  last use, the agent holding it locally, its snapshot digest. Beyond the controller's
  --cache_max_bytes the least recently used key is evicted (new runs start empty).
)"},
      {"gc", R"(dockyard gc [--dry-run]   (admin)
  Runs retention now: finished runs past the controller's --retain_runs (age) or
  --retain_max_runs (count) go with their logs and artifact records, then every blob
  (source, artifact, archived log) nothing else references. Runs in progress and the
  newest run are never removed. --dry-run only shows what would go.
)"},
      {"agents", R"(dockyard agents [--json]                     connected agents, slots and labels
dockyard agents drain|undrain NAME           finish running stages, take no new ones (admin)
dockyard agents enrol [--uses=N] [--ttl=1h]  print a one-time enrolment token (admin)
dockyard agents revoke NAME                  close its session, refuse its certificate, re-queue
                                             its stages (admin)
)"},
      {"tokens", R"(dockyard tokens create --role=read|submit|admin [--name=N]   print a new token (admin)
dockyard tokens list                                          (admin)
dockyard tokens revoke ID|NAME                                (admin)
  Roles: read (status, logs, artifacts, agents); submit (+ run, cancel your own runs);
  admin (+ cancel any run, drain, enrol, revoke, tokens). A token is shown only once.
)"},
      {"secrets", R"(dockyard secrets set NAME < FILE     set a secret from stdin (admin)
dockyard secrets list                 names and when they were set, never values (admin)
dockyard secrets delete NAME          (admin)
  The value is read from standard input, never from an argument, so it stays out of
  `ps` and shell history; one final newline is dropped (`echo` adds one). It must be at
  least 6 bytes. A stage gets it as an environment variable with `secrets: [NAME]`,
  and every log line shows *** where the value (or its base64) would be.
)"},
  };
  return *commands;
}

}  // namespace

std::string Manual() {
  std::string text = R"(dockyard: run pipelines on a Dockyard controller's agents and follow them.

Commands:
  run FILE          submit a pipeline, follow its logs, fetch its artifacts
  watch RUN         follow an existing run like `run` does
  status RUN        a run's stages: state, attempt, agent, why
  logs RUN STAGE    a stage's log (--follow, --attempt=N, --service=NAME)
  artifacts RUN     list a run's artifacts, or fetch them (--dest=DIR)
  cancel RUN        cancel a run
  caches            keyed caches the controller keeps: size, last use, holder
  agents            list agents; drain, undrain, enrol, revoke
  tokens            create, list, revoke client tokens
  secrets           set, list, delete secrets that stages use
  gc                retention now: old finished runs, their logs, unreferenced blobs
`dockyard COMMAND --help` tells more about one command.

)";
  text += kConnection;
  text += R"(
Machine-readable output: --json on run --detach, status, artifacts and agents.

Exit codes:
  0  success
  1  the run failed (a stage failed or timed out)
  2  bad input: usage, or an invalid pipeline file (nothing ran)
  3  the controller is unreachable or failed the request (infrastructure)
  4  not allowed: no token, a revoked one, or a role too weak
  5  the run was cancelled
)";
  return text;
}

std::string CommandHelp(const std::string& command) {
  auto it = Commands().find(command);
  if (it == Commands().end()) return "";
  return it->second + "\n" + kConnection;
}

}  // namespace dockyard
