// The `dockyard` CLI's commands. Each returns the process exit code:
//   0 success · 1 the run failed, was cancelled or timed out · 2 bad input (usage,
//   invalid pipeline file) · 3 the controller is unreachable or failed the request ·
//   4 not allowed (no or bad token, a role too weak) · 5 the run was cancelled.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "cli/client.h"
#include "common/pipeline_parser.h"

namespace dockyard {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitUnavailable = 3;
inline constexpr int kExitDenied = 4;
inline constexpr int kExitCancelled = 5;

// True for a name that is one path component: it cannot lead out of a directory.
bool PlainFileName(const std::string& name);
// The exit code that tells how a finished run ended.
int ExitCodeFor(v1::RunState state);

// Prints `status` for a person and returns the exit code it means.
int ReportError(const absl::Status& status, std::ostream& err);

struct RunCommandOptions {
  std::string artifacts_dir = "target";
  bool download_artifacts = true;
  bool progress = false;  // show transfer progress (stdout is a terminal)
  // A retried or resumed submission with this key re-attaches to the first run.
  std::string idempotency_key;
  bool detach = false;    // print the run id and return once submitted
  bool json = false;      // with detach: {"run_id": ..., "existing": ...}
  std::string junit_file; // when the run ends: a JUnit report of its stages
  ParseLimits limits;     // what a pipeline file may be
  // Called with the run id once submitted (so Ctrl-C can cancel it).
  std::function<void(const std::string&)> on_submitted;
};

// `dockyard run FILE`: validate, ship the source, submit, follow every stage's log
// live with a stage prefix, then fetch the artifacts.
int RunPipeline(DockyardClient& client, const std::string& file, const RunCommandOptions& options,
                std::ostream& out, std::ostream& err);
// Fetches every artifact of `run_id` into `dest` (each verified by sha256); test
// reports go to dest/reports/<stage>/. With `reports_only`, only the reports.
int DownloadAll(DockyardClient& client, const std::string& run_id, const std::string& dest, bool progress,
                std::ostream& out, std::ostream& err, bool reports_only = false);
// `dockyard status RUN [--long]`: stages, and per stage and cache the snapshot
// digest in and out (short; whole with `long_digests`), then whether they link up.
int ShowStatus(DockyardClient& client, const std::string& run_id, bool json, bool long_digests, std::ostream& out,
               std::ostream& err);
// `dockyard logs RUN STAGE [--follow] [--attempt N]`
int ShowLogs(DockyardClient& client, const std::string& run_id, const std::string& stage, int attempt,
             bool follow, std::ostream& out, std::ostream& err);
// Prints the kept log of `service` of the stage (its last attempt that ended).
int ShowServiceLog(DockyardClient& client, const std::string& run_id, const std::string& stage,
                   const std::string& service, std::ostream& out, std::ostream& err);
// `dockyard caches`: the keyed caches the controller keeps, most recently used first.
int ListCaches(DockyardClient& client, bool json, std::ostream& out, std::ostream& err);
// Runs retention now (or, with dry_run, shows what it would remove).
int CollectGarbage(DockyardClient& client, bool dry_run, std::ostream& out, std::ostream& err);
// `dockyard agents`
int ListAgents(DockyardClient& client, bool json, std::ostream& out, std::ostream& err);
// `dockyard agents drain NAME` / `dockyard agents undrain NAME`
int DrainAgent(DockyardClient& client, const std::string& name, bool undo, std::ostream& out, std::ostream& err);
// `dockyard artifacts RUN [--dest DIR]`: lists, or fetches into DIR.
int Artifacts(DockyardClient& client, const std::string& run_id, const std::string& dest, bool progress,
              bool json, std::ostream& out, std::ostream& err);
// `dockyard cancel RUN`
int CancelRun(DockyardClient& client, const std::string& run_id, std::ostream& out, std::ostream& err);

}  // namespace dockyard
