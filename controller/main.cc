// dockyard-controller: schedules pipeline stages onto agents and serves the CLI.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/process_tuning.h"
#include "common/flags_help.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/signals.h"
#include "common/units.h"
#include "controller/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7420", "host:port to listen on (port 0 picks a free port)");
ABSL_FLAG(std::string, data_dir, "/var/lib/dockyard/controller", "where logs, sources and artifacts live");
ABSL_FLAG(std::string, state, "sqlite",
          "where runs, agents and identity live: sqlite (DATA_DIR/state.db) or "
          "postgresql://user@host:5432/database (shared by several controllers; no password in the URL)");
ABSL_FLAG(std::string, state_password_file, "",
          "file holding the PostgreSQL password (default: libpq's PGPASSFILE or ~/.pgpass)");
ABSL_FLAG(absl::Duration, leader_term, absl::Seconds(6),
          "with a shared --state=postgresql://…: how long the leader's lease lasts unrenewed; a standby "
          "controller on the same database takes over within 1.25 terms once the leader is gone");
ABSL_FLAG(std::string, blobs, "disk",
          "where sources, artifacts and cache snapshots live: disk (DATA_DIR) or s3://bucket/prefix "
          "(shared by several controllers; with --s3_endpoint)");
ABSL_FLAG(std::string, s3_endpoint, "", "the S3 service for --blobs=s3://…, e.g. https://s3.example:443");
ABSL_FLAG(std::string, s3_region, "us-east-1", "the region requests to --s3_endpoint are signed for");
ABSL_FLAG(std::string, s3_credentials_file, "",
          "file with aws_access_key_id=… and aws_secret_access_key=… lines "
          "(default: the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables)");
ABSL_FLAG(int, s3_parallel_requests, 8,
          "with --blobs=s3://…: how many blobs of one batch (a stage's artifacts being stored, the small "
          "files of one download) are sent or fetched at once");
ABSL_FLAG(std::string, address_file, "", "write the bound host:port here once listening (for scripts and tests)");
ABSL_FLAG(absl::Duration, lease_timeout, absl::Seconds(30),
          "how long a disconnected agent keeps its stages before they are re-queued");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(5), "how often agents send heartbeats");
ABSL_FLAG(int, lost_agent_retries, 1, "re-runs of a stage whose agent was lost");
ABSL_FLAG(std::string, cache_max_bytes, "10G",
          "keyed-cache snapshots kept for runs on any host; beyond it the least recently used key is evicted");
ABSL_FLAG(absl::Duration, cache_part_grace, absl::Minutes(10),
          "how old a cache part nothing references must be before it is removed (it may be mid-publish)");
ABSL_FLAG(absl::Duration, cache_wait, absl::Seconds(30),
          "how long a stage waits for a busy agent holding its cache before another agent restores the cache");
ABSL_FLAG(bool, insecure, false,
          "plain text, no tokens, no agent certificates: anyone who reaches the port controls the controller "
          "(for tests and throw-away set-ups only)");
ABSL_FLAG(std::vector<std::string>, advertise_name, {},
          "comma-separated host names / IP addresses clients dial, added to the server certificate "
          "(localhost, 127.0.0.1 and the host name are always in it)");
ABSL_FLAG(int, max_stages, 1000, "the most stages a submitted pipeline may have");
ABSL_FLAG(absl::Duration, retain_runs, absl::Hours(24 * 90),
          "finished runs older than this go with their logs and the blobs nothing else references "
          "(0: keep them however old); runs in progress are never touched");
ABSL_FLAG(int64_t, retain_max_runs, 0, "keep at most this many finished runs, the newest (0: no count limit)");
ABSL_FLAG(absl::Duration, blob_grace, absl::Hours(1),
          "how old a blob nothing references must be before retention removes it (it may be on its way into a run)");
ABSL_FLAG(absl::Duration, gc_interval, absl::Hours(1), "how often retention runs (`dockyard gc` runs it at once)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");

int main(int argc, char** argv) {
  dockyard::TuneProcess();
  dockyard::ConfigureFlagsHelp("dockyard-controller", DOCKYARD_VERSION);
  absl::SetProgramUsageMessage(
      "Dockyard controller: accepts pipelines from the `dockyard` CLI and runs their stages on agents.\n"
      "Usage: dockyard-controller [--listen=127.0.0.1:7420] [--data_dir=DIR] [--advertise_name=ci.example]\n"
      "On first start it creates DIR/tls/ca.crt (give it to agents and CLI users) and DIR/admin.token.");
  absl::ParseCommandLine(argc, argv);
  dockyard::SetLogLevel(absl::GetFlag(FLAGS_log_level));
  dockyard::BlockTerminationSignals();

  dockyard::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.controller.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.controller.state.spec = absl::GetFlag(FLAGS_state);
  options.controller.state.password_file = absl::GetFlag(FLAGS_state_password_file);
  options.controller.leadership.address = absl::GetFlag(FLAGS_listen);
  options.controller.leadership.term = absl::GetFlag(FLAGS_leader_term);
  options.controller.leadership.on_lost = [](const absl::Status& status) {
    // Step down at once: another controller leads, nothing more may be served or written.
    dockyard::Logger("controller")->error("stepping down: {}", std::string(status.message()));
    std::_Exit(3);
  };
  options.controller.leadership.pause = [](absl::Duration wait) {
    return dockyard::PollTerminationSignal(static_cast<long>(absl::ToInt64Milliseconds(wait))) != 0;
  };
  options.controller.blobs.spec = absl::GetFlag(FLAGS_blobs);
  options.controller.blobs.s3_endpoint = absl::GetFlag(FLAGS_s3_endpoint);
  options.controller.blobs.s3_region = absl::GetFlag(FLAGS_s3_region);
  options.controller.blobs.s3_parallel_requests = absl::GetFlag(FLAGS_s3_parallel_requests);
  options.controller.blobs.s3_credentials_file = absl::GetFlag(FLAGS_s3_credentials_file);
  options.controller.secure = !absl::GetFlag(FLAGS_insecure);
  options.controller.advertise_names = absl::GetFlag(FLAGS_advertise_name);
  options.controller.max_stages = absl::GetFlag(FLAGS_max_stages);
  options.controller.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.controller.scheduler.lease_timeout = absl::GetFlag(FLAGS_lease_timeout);
  options.controller.scheduler.lost_agent_retries = absl::GetFlag(FLAGS_lost_agent_retries);
  options.controller.scheduler.cache_wait = absl::GetFlag(FLAGS_cache_wait);
  auto cache_max_bytes = dockyard::ParseByteSize(absl::GetFlag(FLAGS_cache_max_bytes));
  if (!cache_max_bytes.ok()) {
    dockyard::Logger("controller")->error("--cache_max_bytes: {}", std::string(cache_max_bytes.status().message()));
    return 2;
  }
  options.controller.cache_max_bytes = *cache_max_bytes;
  options.controller.cache_part_grace = absl::GetFlag(FLAGS_cache_part_grace);
  options.controller.retention.max_age = absl::GetFlag(FLAGS_retain_runs);
  options.controller.retention.max_runs = absl::GetFlag(FLAGS_retain_max_runs);
  options.controller.blob_grace = absl::GetFlag(FLAGS_blob_grace);
  options.controller.gc_interval = absl::GetFlag(FLAGS_gc_interval);
  auto server = dockyard::ControllerServer::Start(options);
  if (server.status().code() == absl::StatusCode::kCancelled) {  // a standby asked to stop
    dockyard::Logger("controller")->info("{}", std::string(server.status().message()));
    return 0;
  }
  if (!server.ok()) {
    dockyard::Logger("controller")->error("cannot start: {}", server.status().ToString());
    return 1;
  }
  if (const std::string file = absl::GetFlag(FLAGS_address_file); !file.empty()) {
    const std::string tmp = file + ".tmp";
    std::ofstream(tmp) << (*server)->address() << "\n";
    std::rename(tmp.c_str(), file.c_str());
  }
  const int sig = dockyard::WaitForTerminationSignal();
  dockyard::Logger("controller")->info("signal {}: shutting down", sig);
  (*server)->Shutdown();
  server->reset();
  dockyard::Logger("controller")->info("stopped");
  return 0;
}
