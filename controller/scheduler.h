// The controller's model of runs, stages and agents, and the decisions on it: which
// stage is ready, which agent takes it, what a status report or a lost agent means.
// Pure logic with injected time; not thread-safe (ControllerCore serialises calls).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dockyard/v1/agent.pb.h"
#include "dockyard/v1/run.pb.h"

namespace dockyard {

struct SchedulerOptions {
  // How long a disconnected agent keeps its stages before they count as lost.
  absl::Duration lease_timeout = absl::Seconds(30);
  // Re-runs granted to a stage whose agent was lost (the pipeline's `retries`
  // covers failing commands).
  int lost_agent_retries = 1;
};

// Something the controller must tell one agent.
struct AgentOrder {
  std::string agent;  // agent name
  v1::ControllerMessage message;
};

// A stage attempt that just ended, so its log can be closed.
struct EndedAttempt {
  v1::StageRef ref;
  v1::StageState state;
};

// What a call changed that the caller must act on.
struct SchedulerEffects {
  std::vector<AgentOrder> orders;
  std::vector<EndedAttempt> ended;
  void Append(SchedulerEffects other);
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);

  // Accepts a validated pipeline; returns the new run's id ("1", "2", ...).
  std::string AddRun(const v1::Pipeline& pipeline, absl::Time now);

  // An agent (re)connected. Attempts it reports running that are no longer its
  // current ones are cancelled through the returned orders.
  SchedulerEffects AgentConnected(const v1::RegisterAgent& agent, absl::Time now);
  // Its stream broke; its stages stay leased until `lease_timeout` passes.
  void AgentDisconnected(const std::string& agent, absl::Time now);
  // Marks stages of agents disconnected longer than the lease as lost, re-queuing
  // them while retries remain.
  SchedulerEffects ExpireLeases(absl::Time now);

  // Places ready stages on agents with free slots; returns the assignments.
  SchedulerEffects Schedule(absl::Time now);

  // Applies an agent's report. FAILED_PRECONDITION when `agent` does not hold that
  // attempt (stale or unknown); the caller refuses and tells it to stop.
  absl::StatusOr<SchedulerEffects> ApplyStatus(const std::string& agent,
                                               const v1::StageStatus& status, absl::Time now);
  // OK when `agent` holds the attempt `ref` (log chunks are accepted only then).
  absl::Status CheckHolder(const std::string& agent, const v1::StageRef& ref) const;

  absl::StatusOr<SchedulerEffects> CancelRun(const std::string& run_id, absl::Time now);

  // Snapshot of a run; NOT_FOUND for unknown ids.
  absl::StatusOr<v1::Run> GetRun(const std::string& run_id) const;
  // Increases on every change of the run; 0 for unknown ids.
  int64_t RunVersion(const std::string& run_id) const;
  // The pipeline a run was submitted with.
  absl::StatusOr<v1::Pipeline> GetPipeline(const std::string& run_id) const;
  std::vector<v1::AgentInfo> Agents() const;

 private:
  struct StageEntry {
    v1::Stage spec;
    v1::StageInfo info;
    int lost_retries_left = 0;
    int fail_retries_left = 0;
  };
  struct RunEntry {
    v1::Pipeline pipeline;
    v1::Run run;  // stages are filled in from `stages` on GetRun
    std::vector<StageEntry> stages;
    std::map<std::string, std::string> cache_agent;  // cache name -> agent holding its volume
    int64_t version = 1;
    int64_t seq = 0;  // submission order, for fairness
  };
  struct AgentEntry {
    v1::RegisterAgent registration;
    bool connected = false;
    absl::Time disconnected_at;
    std::set<std::tuple<std::string, std::string, int>> running;  // (run, stage, attempt)
  };

  StageEntry* FindStage(RunEntry& run, const std::string& name);
  // Moves a stage to a terminal state and settles its dependents and the run.
  void FinishStage(RunEntry& run, StageEntry& stage, v1::StageState state, int exit_code,
                   const std::string& message, absl::Time now, SchedulerEffects& effects);
  void QueueReadyStages(RunEntry& run);
  void SkipDependents(RunEntry& run, const std::string& failed);
  void SettleRun(RunEntry& run, absl::Time now, SchedulerEffects& effects);
  // Takes the attempt away from its agent: re-queues it or ends it as lost.
  void LoseAttempt(RunEntry& run, StageEntry& stage, const std::string& why, absl::Time now,
                   SchedulerEffects& effects);
  // The agent that must run `stage` (holder of one of its caches), if any.
  std::optional<std::string> PinnedAgent(const RunEntry& run, const StageEntry& stage) const;
  bool Eligible(const AgentEntry& agent, const StageEntry& stage) const;
  std::string WaitReason(const RunEntry& run, const StageEntry& stage) const;
  void Touch(RunEntry& run) { ++run.version; }

  SchedulerOptions options_;
  int64_t next_run_ = 1;
  std::map<std::string, RunEntry> runs_;
  std::map<std::string, AgentEntry> agents_;
};

bool IsTerminal(v1::StageState state);

}  // namespace dockyard
