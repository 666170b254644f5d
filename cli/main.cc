// dockyard: the command line client of a Dockyard controller.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/process_tuning.h"
#include "common/flags_help.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "common/client_security.h"
#include "common/files.h"
#include "common/units.h"
#include "cli/admin_commands.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_follower.h"

ABSL_FLAG(std::string, controller, "",
          "controller host:port, or a leader and its standbys comma-separated "
          "(default: $DOCKYARD_CONTROLLER, else 127.0.0.1:7420)");
ABSL_FLAG(std::string, artifacts_dir, "target", "run: where the run's artifacts are downloaded");
ABSL_FLAG(bool, no_artifacts, false, "run: do not download artifacts");
ABSL_FLAG(std::string, idempotency_key, "",
          "run: submitting again with the same key (a retried or resumed CI step) re-attaches to the first run");
ABSL_FLAG(bool, detach, false, "run: print the run id once submitted and return");
ABSL_FLAG(bool, json, false, "machine-readable output (run --detach, status, artifacts, agents)");
ABSL_FLAG(std::string, max_pipeline_bytes, "4M", "run: the largest pipeline file accepted");
ABSL_FLAG(int, max_stages, 1000, "run: the most stages a pipeline file may have (the controller has its own)");
ABSL_FLAG(int, cancel_wait_seconds, 60,
          "run, watch: after Ctrl-C or SIGTERM cancelled the run, how long to wait for it to end");
ABSL_FLAG(std::string, junit, "", "run, watch: when the run ends, write a JUnit report of its stages here");
ABSL_FLAG(std::string, dest, "", "artifacts: download into this directory instead of listing");
ABSL_FLAG(bool, follow, false, "logs: keep following until the stage ends");
ABSL_FLAG(int, attempt, 0, "logs: which attempt (default: the current one)");
ABSL_FLAG(std::string, service, "", "logs: the log of this service of the stage instead (kept once the stage ended)");
ABSL_FLAG(std::string, token_file, "", "file holding the client token (default: $DOCKYARD_TOKEN)");
ABSL_FLAG(std::string, ca_file, "", "the controller's CA certificate (default: $DOCKYARD_CA_FILE)");
ABSL_FLAG(bool, insecure, false, "plain text to a controller started with --insecure (tests only)");
ABSL_FLAG(bool, long, false, "status: whole cache snapshot digests");
ABSL_FLAG(int, uses, 1, "agents enrol: how many agents may enrol with the token");
ABSL_FLAG(absl::Duration, ttl, absl::Hours(1), "agents enrol: how long the token stays valid");
ABSL_FLAG(std::string, role, "", "tokens create: read, submit or admin");
ABSL_FLAG(bool, dry_run, false, "gc: only show what would be removed");
ABSL_FLAG(std::string, name, "", "tokens create: a name for the token (shown in lists and audit lines)");

namespace {

constexpr char kUsage[] =
    "Dockyard CLI.\n"
    "  dockyard run FILE [--artifacts-dir=target]   submit a pipeline, follow it live, fetch its artifacts\n"
    "  dockyard status RUN                          stages of a run and where they ran\n"
    "  dockyard logs RUN STAGE [--follow] [--attempt=N] [--service=NAME]\n"
    "  dockyard artifacts RUN [--dest=DIR]          list (or fetch) a run's artifacts\n"
    "  dockyard cancel RUN\n"
    "  dockyard caches                              keyed caches the controller keeps (size, last use, holder)\n"
    "  dockyard agents                              connected agents, slots and labels\n"
    "  dockyard agents drain|undrain NAME           stop (or resume) giving an agent new stages\n"
    "  dockyard agents enrol [--uses=N] [--ttl=1h]  print a one-time enrolment token for new agents (admin)\n"
    "  dockyard agents revoke NAME                  disconnect an agent for good, re-queue its stages (admin)\n"
    "  dockyard tokens create --role=read|submit|admin [--name=N]   print a new client token (admin)\n"
    "  dockyard tokens list | tokens revoke ID|NAME (admin)\n"
    "  dockyard secrets set NAME < value-file | secrets list | secrets delete NAME (admin)\n"
    "Controller: --controller=HOST:PORT or DOCKYARD_CONTROLLER (default 127.0.0.1:7420).\n"
    "Security: the token from DOCKYARD_TOKEN or --token_file, the controller's CA from DOCKYARD_CA_FILE or\n"
    "--ca_file (its data_dir/tls/ca.crt); --insecure only for a controller started with --insecure.\n"
    "Exit codes: 0 ok, 1 run failed/cancelled, 2 bad input, 3 controller unreachable, 4 not allowed.";

int Usage(const char* why) {
  std::cerr << "dockyard: " << why << "\n" << kUsage << "\n(`dockyard --help` for the manual)\n";
  return dockyard::kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  dockyard::TuneProcess();
  // Users type --artifacts-dir; absl flag names cannot hold '-'.
  std::vector<std::string> fixed(argv, argv + argc);
  std::vector<char*> args;
  for (std::string& arg : fixed) {
    if (arg.rfind("--", 0) == 0) {
      for (size_t i = 2; i < arg.size() && arg[i] != '='; ++i) {
        if (arg[i] == '-') arg[i] = '_';
      }
    }
    args.push_back(arg.data());
  }
  // --help reads like a manual (cli/help.cc), not like the flag library's dump.
  for (size_t i = 1; i < fixed.size(); ++i) {
    if (fixed[i] != "--help" && fixed[i] != "-h" && fixed[i] != "--helpfull") continue;
    std::string command;
    for (size_t j = 1; j < fixed.size(); ++j) {
      if (fixed[j].rfind("-", 0) != 0) {
        command = fixed[j];
        break;
      }
    }
    const std::string help = command.empty() ? "" : dockyard::CommandHelp(command);
    std::cout << (help.empty() ? dockyard::Manual() : help);
    return 0;
  }
  if (fixed.size() >= 2 && fixed[1] == "help") {
    const std::string help = fixed.size() >= 3 ? dockyard::CommandHelp(fixed[2]) : "";
    std::cout << (help.empty() ? dockyard::Manual() : help);
    return 0;
  }
  dockyard::ConfigureFlagsHelp("dockyard", DOCKYARD_VERSION);
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() < 2) return Usage("missing command");

  std::string address = absl::GetFlag(FLAGS_controller);
  if (address.empty() && std::getenv("DOCKYARD_CONTROLLER") != nullptr) address = std::getenv("DOCKYARD_CONTROLLER");
  if (address.empty()) address = "127.0.0.1:7420";
  // Ctrl-C on `run`: the first asks the controller to cancel the run and keeps
  // following it to the end; the second stops waiting. Blocked before any thread
  // (gRPC's included) starts, so only the watcher below receives it.
  sigset_t interrupts;
  sigemptyset(&interrupts);
  sigaddset(&interrupts, SIGINT);
  sigaddset(&interrupts, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &interrupts, nullptr);
  dockyard::ClientSecurity security;
  security.insecure = absl::GetFlag(FLAGS_insecure);
  if (security.insecure) {
    std::cerr << "dockyard: warning: --insecure: plain text, no token sent; only for a controller started "
                 "with --insecure\n";
  } else {
    std::string ca_file = absl::GetFlag(FLAGS_ca_file);
    if (ca_file.empty() && std::getenv("DOCKYARD_CA_FILE") != nullptr) ca_file = std::getenv("DOCKYARD_CA_FILE");
    if (ca_file.empty()) {
      return Usage("no CA: set DOCKYARD_CA_FILE or --ca_file to the controller's <data_dir>/tls/ca.crt");
    }
    auto ca = dockyard::ReadFileToString(ca_file);
    if (!ca.ok()) return Usage(("cannot read the CA file: " + std::string(ca.status().message())).c_str());
    security.ca_pem = *std::move(ca);
    // Never a flag value: a token on the command line shows in `ps`.
    if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
      auto token = dockyard::ReadFirstLine(file);
      if (!token.ok()) return Usage(("cannot read the token file: " + std::string(token.status().message())).c_str());
      security.token = *std::move(token);
    } else if (const char* token = std::getenv("DOCKYARD_TOKEN"); token != nullptr) {
      security.token = token;
    }
  }
  dockyard::DockyardClient client(address, security);
  static absl::Mutex run_mu;
  static std::string submitted_run;
  std::thread([&client, interrupts] {
    int sig = 0;
    sigwait(&interrupts, &sig);
    std::string run_id;
    {
      absl::MutexLock lock(&run_mu);
      run_id = submitted_run;
    }
    if (run_id.empty()) std::_Exit(130);
    std::cerr << "\ndockyard: cancelling run " << run_id << " (Ctrl-C again to stop waiting)\n";
    if (absl::Status st = client.CancelRun(run_id); !st.ok()) std::cerr << "dockyard: " << st.message() << "\n";
    // Follow the run to its cancelled end, but boundedly: whoever sent the signal
    // (a Jenkins abort) is waiting for this process.
    const timespec patience{absl::GetFlag(FLAGS_cancel_wait_seconds), 0};
    if (sigtimedwait(&interrupts, nullptr, &patience) < 0) {
      std::cerr << "dockyard: run " << run_id << " did not end within " << patience.tv_sec
                << "s of the cancel; stopped waiting (see `dockyard status " << run_id << "`)\n";
    }
    std::_Exit(130);
  }).detach();
  const bool tty = ::isatty(STDOUT_FILENO) == 1;

  const std::string command = positional[1];
  auto arg = [&](size_t i) { return i < positional.size() ? std::string(positional[i]) : std::string(); };
  const size_t count = positional.size() - 2;
  dockyard::RunCommandOptions options;
  options.artifacts_dir = absl::GetFlag(FLAGS_artifacts_dir);
  options.download_artifacts = !absl::GetFlag(FLAGS_no_artifacts);
  options.progress = tty;
  options.idempotency_key = absl::GetFlag(FLAGS_idempotency_key);
  options.detach = absl::GetFlag(FLAGS_detach);
  options.json = absl::GetFlag(FLAGS_json);
  options.junit_file = absl::GetFlag(FLAGS_junit);
  auto max_pipeline_bytes = dockyard::ParseByteSize(absl::GetFlag(FLAGS_max_pipeline_bytes));
  if (!max_pipeline_bytes.ok() || absl::GetFlag(FLAGS_max_stages) < 1) {
    return Usage(max_pipeline_bytes.ok() ? "--max_stages must be at least 1"
                                         : std::string(max_pipeline_bytes.status().message()).c_str());
  }
  options.limits.max_file_bytes = static_cast<size_t>(*max_pipeline_bytes);
  options.limits.max_stages = static_cast<size_t>(absl::GetFlag(FLAGS_max_stages));
  options.on_submitted = [](const std::string& id) {
    absl::MutexLock lock(&run_mu);
    submitted_run = id;
  };
  if (command == "run") {
    if (count != 1) return Usage("run takes one pipeline file");
    return dockyard::RunPipeline(client, arg(2), options, std::cout, std::cerr);
  }
  if (command == "watch") {
    if (count != 1) return Usage("watch takes a run id");
    options.on_submitted(arg(2));
    return dockyard::FollowRun(client, arg(2), options, std::cout, std::cerr);
  }
  if (command == "status") {
    if (count != 1) return Usage("status takes a run id");
    return dockyard::ShowStatus(client, arg(2), options.json, absl::GetFlag(FLAGS_long), std::cout, std::cerr);
  }
  if (command == "logs") {
    if (count != 2) return Usage("logs takes a run id and a stage name");
    if (!absl::GetFlag(FLAGS_service).empty()) {
      return dockyard::ShowServiceLog(client, arg(2), arg(3), absl::GetFlag(FLAGS_service), std::cout, std::cerr);
    }
    return dockyard::ShowLogs(client, arg(2), arg(3), absl::GetFlag(FLAGS_attempt), absl::GetFlag(FLAGS_follow),
                              std::cout, std::cerr);
  }
  if (command == "artifacts") {
    if (count != 1) return Usage("artifacts takes a run id");
    return dockyard::Artifacts(client, arg(2), absl::GetFlag(FLAGS_dest), tty, options.json, std::cout, std::cerr);
  }
  if (command == "cancel") {
    if (count != 1) return Usage("cancel takes a run id");
    return dockyard::CancelRun(client, arg(2), std::cout, std::cerr);
  }
  if (command == "caches") {
    if (count != 0) return Usage("caches takes no arguments");
    return dockyard::ListCaches(client, options.json, std::cout, std::cerr);
  }
  if (command == "gc") {
    if (count != 0) return Usage("gc takes no arguments");
    return dockyard::CollectGarbage(client, absl::GetFlag(FLAGS_dry_run), std::cout, std::cerr);
  }
  if (command == "agents") {
    if (count == 0) return dockyard::ListAgents(client, options.json, std::cout, std::cerr);
    if (count == 2 && (arg(2) == "drain" || arg(2) == "undrain")) {
      return dockyard::DrainAgent(client, arg(3), arg(2) == "undrain", std::cout, std::cerr);
    }
    if (count == 1 && arg(2) == "enrol") {
      return dockyard::EnrolToken(client, absl::GetFlag(FLAGS_uses), absl::GetFlag(FLAGS_ttl), std::cout, std::cerr);
    }
    if (count == 2 && arg(2) == "revoke") return dockyard::RevokeAgent(client, arg(3), std::cout, std::cerr);
    return Usage("agents takes no arguments, or drain|undrain|revoke NAME, or enrol");
  }
  if (command == "tokens") {
    if (count == 1 && arg(2) == "create") {
      return dockyard::CreateToken(client, absl::GetFlag(FLAGS_role), absl::GetFlag(FLAGS_name), std::cout, std::cerr);
    }
    if (count == 1 && arg(2) == "list") return dockyard::ListTokens(client, std::cout, std::cerr);
    if (count == 2 && arg(2) == "revoke") return dockyard::RevokeToken(client, arg(3), std::cout, std::cerr);
    return Usage("tokens takes create --role=R [--name=N], list, or revoke ID");
  }
  if (command == "secrets") {
    if (count == 2 && arg(2) == "set") return dockyard::SetSecret(client, arg(3), std::cin, std::cout, std::cerr);
    if (count == 1 && arg(2) == "list") return dockyard::ListSecrets(client, std::cout, std::cerr);
    if (count == 2 && arg(2) == "delete") return dockyard::DeleteSecret(client, arg(3), std::cout, std::cerr);
    return Usage("secrets takes set NAME (the value on stdin), list, or delete NAME");
  }
  return Usage(("unknown command \"" + command + "\"").c_str());
}
