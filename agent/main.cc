// dockyard-agent: connects to a controller and runs the stages it assigns in local
// Docker containers.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/controller_channel.h"
#include "common/process_tuning.h"
#include "common/flags_help.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/docker_engine_client.h"
#include "agent/enrolment.h"
#include "common/client_security.h"
#include "common/units.h"
#include "common/logging.h"
#include "common/signals.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:7420",
          "controller host:port; a leader and its standbys comma-separated (a:7420,b:7420)");
ABSL_FLAG(std::string, name, "", "agent name, unique per controller (default: the host name)");
ABSL_FLAG(std::string, labels, "", "comma-separated labels stages can select, e.g. linux,python");
ABSL_FLAG(int, slots, 0, "stages run at once (default: number of CPUs)");
ABSL_FLAG(std::string, docker_host, "",
          "the Docker engine, as the Docker CLI names it: unix:///path/docker.sock "
          "(default: $DOCKER_HOST, else unix:///var/run/docker.sock)");
ABSL_FLAG(std::string, work_dir, "/var/lib/dockyard/agent", "source cache and scratch space");
ABSL_FLAG(absl::Duration, drain_grace, absl::Minutes(10),
          "on SIGTERM: how long running stages may finish before they are stopped");
ABSL_FLAG(std::string, max_memory, "4G", "the most memory any stage may use (no swap); a stage may ask for less");
ABSL_FLAG(int64_t, max_pids, 4096, "the most processes any stage may run at once; a stage may ask for fewer");
ABSL_FLAG(std::string, max_cpus, "", "the most CPUs any stage may use, e.g. 2 or 1.5 (default: this machine's)");
ABSL_FLAG(std::string, max_log_bytes, "1G",
          "the most output one stage attempt logs; past it the first part and the last MiB are kept and the log says "
          "what was cut");
ABSL_FLAG(std::string, container_log_driver, "local",
          "how the engine keeps stage and service output, which a restarted agent replays: local (compact records, "
          "the least work for the engine), json-file or journald; \"\" for the engine's default. local and "
          "json-file keep up to twice --max_log_bytes per container");
ABSL_FLAG(std::string, max_service_log_bytes, "16M",
          "the most of each service's log kept with its stage (dockyard logs --service); the rest is cut and the log "
          "says so");
ABSL_FLAG(std::string, inputs_max_bytes, "10G",
          "artifacts fetched as stages' inputs that this agent keeps (least recently used go first; others are "
          "fetched again)");
ABSL_FLAG(std::string, cache_max_bytes, "20G",
          "cache snapshot parts this agent keeps locally (least recently used go first; others are fetched again)");
ABSL_FLAG(std::string, max_artifact_bytes, "4G",
          "the most bytes one artifact pattern of a stage may read out of its container (huge or sparse files are "
          "refused, not copied)");
ABSL_FLAG(std::string, image_cache_bytes, "20G",
          "images this agent built kept on its engine; past it the least recently used go (never one in use)");
ABSL_FLAG(std::string, registry_auth_file, "",
          "registry logins for pulls, Docker's config.json form, mode 0600 (default: <work_dir>/registry-auth.json)");
ABSL_FLAG(int, max_artifacts, 1000, "the most files one stage may publish as artifacts");
ABSL_FLAG(bool, allow_network, false, "let stages ask for `network: bridge` (default: every stage has loopback only)");
ABSL_FLAG(std::string, ca_file, "",
          "the controller's CA certificate (<controller data_dir>/tls/ca.crt); needed to enrol");
ABSL_FLAG(std::string, enrol_token_file, "",
          "file holding a token from `dockyard agents enrol`, used once to obtain this agent's certificate "
          "(kept in <work_dir>/identity)");
ABSL_FLAG(bool, insecure, false, "plain text to a controller started with --insecure (tests only)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");

int main(int argc, char** argv) {
  dockyard::TuneProcess();
  dockyard::ConfigureFlagsHelp("dockyard-agent", DOCKYARD_VERSION);
  absl::SetProgramUsageMessage(
      "Dockyard agent: runs pipeline stages in local Docker containers for a controller.\n"
      "Usage: dockyard-agent --controller=HOST:PORT [--name=N] [--labels=a,b] [--slots=N]\n"
      "First start: add --enrol_token_file=F --ca_file=ca.crt (see `dockyard agents enrol`).");
  absl::ParseCommandLine(argc, argv);
  dockyard::SetLogLevel(absl::GetFlag(FLAGS_log_level));
  dockyard::BlockTerminationSignals();
  auto log = dockyard::Logger("agent");

  dockyard::AgentOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  if (options.name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options.name = host;
  }
  for (absl::string_view label : absl::StrSplit(absl::GetFlag(FLAGS_labels), ',', absl::SkipWhitespace())) {
    options.labels.emplace_back(label);
  }
  options.slots = absl::GetFlag(FLAGS_slots);
  if (options.slots <= 0) options.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  options.version = DOCKYARD_VERSION;
  auto max_memory = dockyard::ParseByteSize(absl::GetFlag(FLAGS_max_memory));
  const std::string cpus_flag = absl::GetFlag(FLAGS_max_cpus);
  auto max_cpus = dockyard::ParseMilliCpus(
      cpus_flag.empty() ? std::to_string(std::max(1u, std::thread::hardware_concurrency())) : cpus_flag);
  if (!max_memory.ok() || !max_cpus.ok() || absl::GetFlag(FLAGS_max_pids) < 1) {
    log->error("--max_memory, --max_cpus, --max_pids: {}",
               std::string((!max_memory.ok() ? max_memory.status() : !max_cpus.ok() ? max_cpus.status()
                                                                                     : absl::InvalidArgumentError(
                                                                                           "--max_pids must be at least 1"))
                               .message()));
    return 1;
  }
  options.sandbox.max_memory_bytes = *max_memory;
  options.sandbox.max_pids = absl::GetFlag(FLAGS_max_pids);
  options.sandbox.max_milli_cpus = *max_cpus;
  options.sandbox.allow_network = absl::GetFlag(FLAGS_allow_network);
  auto max_log = dockyard::ParseByteSize(absl::GetFlag(FLAGS_max_log_bytes));
  if (!max_log.ok()) {
    log->error("--max_log_bytes: {}", std::string(max_log.status().message()));
    return 1;
  }
  options.max_log_bytes = *max_log;
  auto max_service_log = dockyard::ParseByteSize(absl::GetFlag(FLAGS_max_service_log_bytes));
  if (!max_service_log.ok() || *max_service_log < 1) {
    log->error("--max_service_log_bytes: {}",
               max_service_log.ok() ? "must be at least 1 byte" : std::string(max_service_log.status().message()));
    return 1;
  }
  options.max_service_log_bytes = *max_service_log;
  options.container_log.driver = absl::GetFlag(FLAGS_container_log_driver);
  options.container_log.replay_bytes = options.max_log_bytes;
  if (absl::Status st = dockyard::CheckContainerLogDriver(options.container_log.driver); !st.ok()) {
    log->error("{}", std::string(st.message()));
    return 1;
  }
  auto inputs_max = dockyard::ParseByteSize(absl::GetFlag(FLAGS_inputs_max_bytes));
  if (!inputs_max.ok()) {
    log->error("--inputs_max_bytes: {}", std::string(inputs_max.status().message()));
    return 1;
  }
  options.inputs_max_bytes = *inputs_max;
  auto max_artifact_bytes = dockyard::ParseByteSize(absl::GetFlag(FLAGS_max_artifact_bytes));
  if (!max_artifact_bytes.ok() || absl::GetFlag(FLAGS_max_artifacts) < 1) {
    log->error("--max_artifact_bytes / --max_artifacts: {}",
               max_artifact_bytes.ok() ? "--max_artifacts must be at least 1"
                                       : std::string(max_artifact_bytes.status().message()));
    return 1;
  }
  options.artifact_limits.max_bytes = *max_artifact_bytes;
  auto cache_max_bytes = dockyard::ParseByteSize(absl::GetFlag(FLAGS_cache_max_bytes));
  if (!cache_max_bytes.ok()) {
    log->error("--cache_max_bytes: {}", std::string(cache_max_bytes.status().message()));
    return 1;
  }
  options.cache_max_bytes = *cache_max_bytes;
  auto image_cache_bytes = dockyard::ParseByteSize(absl::GetFlag(FLAGS_image_cache_bytes));
  if (!image_cache_bytes.ok()) {
    log->error("--image_cache_bytes: {}", std::string(image_cache_bytes.status().message()));
    return 1;
  }
  options.image_cache_bytes = *image_cache_bytes;
  options.registry_auth_file = absl::GetFlag(FLAGS_registry_auth_file);
  options.artifact_limits.max_files = absl::GetFlag(FLAGS_max_artifacts);

  // One agent process per work dir: a second would fight over spools and containers.
  std::filesystem::create_directories(options.work_dir);
  const std::string lock_path = options.work_dir + "/agent.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    log->error("another dockyard-agent is using {} (lock {})", options.work_dir, lock_path);
    return 1;
  }

  std::string docker_host = absl::GetFlag(FLAGS_docker_host);
  if (docker_host.empty() && std::getenv("DOCKER_HOST") != nullptr) docker_host = std::getenv("DOCKER_HOST");
  if (docker_host.empty()) docker_host = "unix:///var/run/docker.sock";
  auto socket = dockyard::DockerSocketPath(docker_host);
  if (!socket.ok()) {
    log->error("{}", std::string(socket.status().message()));
    return 1;
  }
  dockyard::DockerEngineClient docker(*socket);
  if (absl::Status st = docker.Ping(); !st.ok()) {
    log->error("Docker engine at {} does not answer: {}", docker_host, st.ToString());
    return 1;
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // As much as the controller accepts: an assignment carries a whole stage spec.
  args.SetMaxReceiveMessageSize(16 << 20);
  dockyard::ClientSecurity security;
  if (absl::GetFlag(FLAGS_insecure)) {
    security.insecure = true;
    log->warn("--insecure: plain text to the controller; anyone on the path can read and forge this agent's traffic");
  } else {
    dockyard::EnrolmentOptions enrolment;
    enrolment.controller = absl::GetFlag(FLAGS_controller);
    enrolment.name = options.name;
    enrolment.identity_dir = options.work_dir + "/identity";
    enrolment.ca_file = absl::GetFlag(FLAGS_ca_file);
    enrolment.enrol_token_file = absl::GetFlag(FLAGS_enrol_token_file);
    auto loaded = dockyard::LoadOrEnrol(enrolment);
    if (!loaded.ok()) {
      log->error("{}", std::string(loaded.status().message()));
      return 1;
    }
    security = *std::move(loaded);
  }
  auto channel = dockyard::ControllerChannel(absl::GetFlag(FLAGS_controller), dockyard::ChannelCredentials(security),
                                           args);

  dockyard::Agent agent(options, channel, &docker);
  log->info("agent={} slots={} controller={}", options.name, options.slots, absl::GetFlag(FLAGS_controller));
  agent.Start();
  const int sig = dockyard::WaitForTerminationSignal();
  log->info("signal {}: draining (a second signal stops running stages at once)", sig);
  // A second signal cuts the grace short.
  std::thread impatient([&] {
    dockyard::WaitForTerminationSignal();
    agent.EndDrain();
  });
  impatient.detach();
  agent.Drain(absl::GetFlag(FLAGS_drain_grace));
  agent.Shutdown();
  log->info("stopped");
  return 0;
}
