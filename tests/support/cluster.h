// Test support: a real controller and real agents as child processes on this
// machine (controller on 127.0.0.1:0), a scratch directory, and the real CLI, so
// integration tests can kill, pause and restart them like an operator would. With
// DOCKYARD_TEST_SCALEOUT set (the scale-out suite) the controller
// keeps its state in a fresh PostgreSQL database and its blobs in a fresh bucket.
// Secured as a user would run it: TLS, the CLI with the controller's CA and admin
// token (from a file, never on a command line), agents enrolled with one-time
// tokens on their first start.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace dockyard::testing {

// A child process with stdout+stderr in a file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();  // SIGKILLs it if still running

  void Signal(int sig);
  // Waits for exit; returns the exit status (128+signal when killed), -1 on timeout.
  int Wait(absl::Duration timeout = absl::Seconds(60));
  bool Running();
  std::string Log() const;
  pid_t pid() const { return pid_; }
  // The most memory it ever held (KiB), known once it has exited.
  int64_t max_rss_kb() const { return max_rss_kb_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  int64_t max_rss_kb_ = 0;
  std::string log_path_;
};

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

struct AgentSpec {
  std::string name;
  std::vector<std::string> labels;
  int slots = 1;
  std::vector<std::string> flags;  // extra dockyard-agent flags
};

class Cluster {
 public:
  // A fresh scratch dir under /tmp; the controller is not started yet.
  Cluster();
  // Stops everything it started and removes Docker objects labelled for its agents.
  ~Cluster();

  void StartController(std::vector<std::string> extra_flags = {});
  // The controller's CA certificate and first admin token (files in its data dir).
  std::string ca_file() const { return dir_ + "/controller/tls/ca.crt"; }
  std::string admin_token_file() const { return dir_ + "/controller/admin.token"; }
  Process& controller() { return *controller_; }
  // The --state/--blobs flags of the scale-out suite's database and bucket (empty
  // outside it), for a second controller on the same stores.
  std::vector<std::string> SharedStoreFlags() const;
  const std::string& address() const { return address_; }
  Process& StartAgent(const AgentSpec& spec);
  Process& agent(const std::string& name) { return *agents_.at(name); }

  // Runs `dockyard ARGS...` against this cluster's controller, in dir(), as admin.
  CliResult Cli(const std::vector<std::string>& args, absl::Duration timeout = absl::Minutes(10));
  // The same with the token in `token_file` ("" for no token at all), and stdin
  // from `stdin_path` (default /dev/null).
  CliResult CliWithToken(const std::string& token_file, const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Minutes(10), const std::string& stdin_path = "");
  // Creates a client token of `role` and returns the file holding it.
  std::string CreateToken(const std::string& role, const std::string& name);
  // Creates an enrolment token and returns the file holding it.
  std::string CreateEnrolToken(int uses = 1, const std::string& ttl = "1h");
  // Starts `dockyard ARGS...` in the background (output in its Log()), as admin or
  // with the token in `token_file`.
  std::unique_ptr<Process> SpawnCli(const std::vector<std::string>& args, const std::string& token_file = "");
  // Plain text everywhere (--insecure on controller, agents and CLI): only for the
  // test of that mode. Call before StartController.
  void UseInsecure() { insecure_ = true; }
  // Polls `dockyard status RUN` until its output contains `text`; returns the last output.
  std::string WaitForStatus(const std::string& run_id, const std::string& text,
                            absl::Duration timeout = absl::Seconds(60));
  // Writes `text` to dir()/name (creating parent dirs) and returns the path.
  std::string WriteFile(const std::string& name, const std::string& text);
  const std::string& dir() const { return dir_; }
  // Waits until `dockyard agents` lists `count` connected agents.
  void WaitForAgents(int count, absl::Duration timeout = absl::Seconds(30));

 private:
  // The CLI's connection flags: the CA and a token, or --insecure.
  std::vector<std::string> ConnectionFlags(const std::string& token_file) const;

  std::string dir_;
  bool insecure_ = false;
  std::vector<std::string> state_flags_;  // --state=postgresql://… in the scale-out suite
  std::vector<std::string> blob_flags_;   // --blobs=s3://… in the scale-out suite
  std::unique_ptr<Process> controller_;
  std::string address_;
  std::map<std::string, std::unique_ptr<Process>> agents_;
  std::vector<std::string> agent_names_;
};

// `base` made unique to this test process: agents of tests that run at once share
// one Docker engine, and an agent cleans up containers carrying its name.
std::string UniqueName(const std::string& base);
// From `dockyard status` output: the agent the stage's current attempt ran on.
std::string AgentOfStage(const std::string& status_out, const std::string& stage);
// A port on 127.0.0.1 nothing listens on (free when asked; for a server that must
// know its port before it listens).
int FreeLoopbackPort();
// Polls `probe` every 50 ms until it returns true or `timeout` passes.
bool Eventually(const std::function<bool()>& probe, absl::Duration timeout);

// Path of a built binary, e.g. Bin("cli/dockyard").
std::string Bin(const std::string& relative);
// Output of a shell command (for `docker ps` checks).
std::string Shell(const std::string& command);
std::string ReadFile(const std::string& path);

}  // namespace dockyard::testing
