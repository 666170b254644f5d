// The controller's model of runs, stages and agents, and the decisions on it: which
// stage is ready, which agent takes it, what a status report or a lost agent means.
// Pure logic with injected time; not thread-safe (ControllerCore serialises calls).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/states.h"
#include "dockyard/v1/agent.pb.h"
#include "dockyard/v1/run.pb.h"
#include "dockyard/v1/state.pb.h"

namespace dockyard {

struct SchedulerOptions {
  // How long a disconnected agent keeps its stages before they count as lost.
  absl::Duration lease_timeout = absl::Seconds(30);
  // Re-runs granted to a stage whose agent was lost (the pipeline's `retries`
  // covers failing commands).
  int lost_agent_retries = 1;
  // How long a stage waits for a busy agent holding its cache before another agent
  // restores the cache from its snapshot (--cache_wait).
  absl::Duration cache_wait = absl::Seconds(30);
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
  // An attempt as (run, stage, attempt): ordered, so it can key sets and maps.
  using AttemptKey = std::tuple<std::string, std::string, int>;

  explicit Scheduler(SchedulerOptions options);

  // Accepts a validated pipeline submitted by `owner` (a token name, or "");
  // returns the new run's id ("1", "2", ...).
  std::string AddRun(const v1::Pipeline& pipeline, absl::Time now, const std::string& owner = "",
                     const std::string& idempotency_key = "");
  // The run `owner` submitted with `idempotency_key`, if any.
  std::optional<std::string> FindRunByKey(const std::string& owner, const std::string& idempotency_key) const;

  // An agent (re)connected. Attempts it reports running that are no longer its
  // current ones are cancelled through the returned orders.
  SchedulerEffects AgentConnected(const v1::RegisterAgent& agent, absl::Time now);
  // Its stream broke; its stages stay leased until `lease_timeout` passes.
  void AgentDisconnected(const std::string& agent, absl::Time now);
  // The agent is alive. After a silence that cost it its lease, this is handled
  // like a reconnect: attempts it still runs but no longer holds are cancelled.
  SchedulerEffects AgentHeartbeat(const std::string& agent, const v1::Heartbeat& heartbeat, absl::Time now);
  // An operator's drain (or its undo): no new stages for the agent.
  absl::Status DrainAgent(const std::string& agent, bool drain);
  // Marks stages of agents disconnected (or silent) longer than the lease as lost,
  // re-queuing them while retries remain.
  SchedulerEffects ExpireLeases(absl::Time now);

  // The agent was revoked: it counts as gone now, and its stages are lost at once
  // (re-queued while retries remain) instead of after the lease; the orders tell
  // it to stop them.
  SchedulerEffects RevokeAgent(const std::string& agent, absl::Time now);
  // When `agent` was last heard from (registration or heartbeat); nullopt for an
  // unknown agent.
  std::optional<absl::Time> LastSeen(const std::string& agent) const;
  // True when `agent` holds a live attempt of a run whose source is `digest`.
  bool NeedsSource(const std::string& agent, const std::string& digest) const;
  // True when `agent` holds a live attempt of `run_id`.
  bool HoldsAttemptOf(const std::string& agent, const std::string& run_id) const;

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

  // --- retention ---
  struct RunSummary {
    std::string id;
    bool finished = false;
    absl::Time finished_at;
    std::string source_digest;
  };
  // Every run, in id order.
  std::vector<RunSummary> RunSummaries() const;
  // Forgets finished runs (retention); an id of a run in progress is ignored.
  void ForgetRuns(const std::vector<std::string>& ids);

  // --- keyed caches ---
  // Each key's latest snapshot, most recently used first.
  std::vector<v1::CacheInfo> Caches() const;
  // Forgets least recently used keys until their snapshots' bytes fit `max_bytes`;
  // returns what it forgot. New runs of those keys start empty.
  std::vector<v1::CacheInfo> EvictCaches(int64_t max_bytes);
  // Snapshot roots something may still start from or restore: every key's latest
  // and every unfinished run's.
  std::set<std::string> LiveCacheSnapshots() const;

  // --- persistence (ControllerCore saves what changed after every call) ---
  // Ids of runs / names of agents whose persisted record changed since the last call.
  // A run's record covers all its stages, so taking a run also takes its stages.
  std::vector<std::string> TakeDirtyRuns();
  std::vector<std::string> TakeDirtyAgents();
  // The stages that changed alone since the last call (their runs' records did not).
  std::vector<v1::StageRecord> TakeDirtyStages();
  // The whole state of one run / agent; NOT_FOUND for unknown ones.
  absl::StatusOr<v1::RunRecord> ExportRun(const std::string& run_id) const;
  absl::StatusOr<v1::AgentRecord> ExportAgent(const std::string& agent) const;
  // Replaces all state with saved records (at start-up, before any agent connects).
  // Every agent starts disconnected at `now`, so the lease applies: one that
  // reconnects within it keeps its stages, the others' stages are lost. Records that
  // do not fit together (from a damaged database) are skipped, and a holder missing
  // for a live attempt is stood in for (so its lease runs out); both are named in the
  // DATA_LOSS result, and the rest is restored.
  absl::Status Restore(std::vector<v1::RunRecord> runs, std::vector<v1::AgentRecord> agents,
                       absl::Time now);

 private:
  struct StageEntry {
    v1::Stage spec;
    v1::StageInfo info;
    int lost_retries_left = 0;
    int fail_retries_left = 0;
    absl::Time ready_since = absl::InfinitePast();  // queued and unplaced since (not saved)
  };
  struct RunEntry {
    v1::Pipeline pipeline;
    v1::Run run;  // stages are filled in from `stages` on GetRun
    std::vector<StageEntry> stages;
    std::map<std::string, std::string> cache_agent;     // cache name -> agent holding its latest snapshot
    std::map<std::string, std::string> cache_snapshot;  // cache name -> digest the next consumer starts from
    std::map<std::string, std::string> cache_source;    // cache name -> where that digest came from
    std::set<std::string> cache_hosts;                  // agents with a volume of this run
    std::set<std::string> evicted_keys;                 // "<cache>.<key>" it left, since evicted
    // Indexes of its stages that may be queued: every queued one is here (Queue adds
    // it); Schedule drops the ones that moved on. So a pass skips the rest unseen.
    std::set<int> queued;
    int64_t version = 1;
    int64_t seq = 0;  // submission order, for fairness
  };
  struct AgentEntry {
    v1::RegisterAgent registration;
    bool connected = false;
    bool drained = false;   // by an operator; the agent's own wish is registration.draining
    absl::Time last_seen;   // last message of any kind
    absl::Time disconnected_at;
    std::set<AttemptKey> running;
  };

  StageEntry* FindStage(RunEntry& run, const std::string& name);
  // Moves a stage to a terminal state and settles its dependents and the run.
  void FinishStage(RunEntry& run, StageEntry& stage, v1::StageState state, int exit_code,
                   const std::string& message, absl::Time now, SchedulerEffects& effects);
  void QueueReadyStages(RunEntry& run);
  // Marks the stage queued (waiting for an agent).
  void Queue(RunEntry& run, StageEntry& stage);
  void SkipDependents(RunEntry& run, const std::string& failed);
  void SettleRun(RunEntry& run, absl::Time now, SchedulerEffects& effects);
  // Takes every attempt away from `agent` (see LoseAttempt).
  void LoseAgentStages(const std::string& name, AgentEntry& agent, const std::string& why, absl::Time now,
                       SchedulerEffects& effects);
  // Takes the attempt away from its agent: re-queues it or ends it as lost.
  void LoseAttempt(RunEntry& run, StageEntry& stage, const std::string& why, absl::Time now,
                   SchedulerEffects& effects);
  // The agent holding the latest snapshot of one of the stage's caches, if any.
  std::optional<std::string> CacheHolderOf(const RunEntry& run, const StageEntry& stage) const;
  // A succeeded stage's caches become what the next consumers start from.
  void RecordCaches(RunEntry& run, StageEntry& stage, const std::string& agent, const v1::StageStatus& status);
  // A succeeded run's keyed caches become their keys' latest snapshots.
  void PublishKeyedCaches(const RunEntry& run, absl::Time now);
  // Connected or not: labels match and the agent takes new stages.
  bool Eligible(const AgentEntry& agent, const StageEntry& stage) const;
  bool LabelsMatch(const AgentEntry& agent, const StageEntry& stage) const;
  bool Draining(const AgentEntry& agent) const { return agent.drained || agent.registration.draining(); }
  // Cancels what `agent` reports running but does not hold; loses what it holds but
  // no longer reports.
  void Reconcile(AgentEntry& agent, const google::protobuf::RepeatedPtrField<v1::StageRef>& running,
                 absl::Time now, SchedulerEffects& effects);
  std::string WaitReason(const StageEntry& stage) const;
  // A change to the run itself (its state, caches, hosts): its whole record is saved.
  void Touch(RunEntry& run) {
    ++run.version;
    dirty_runs_.insert(run.run.id());
  }
  // A change to one stage only (state, attempt, message, retries): only it is saved.
  void TouchStage(RunEntry& run, const StageEntry& stage) {
    ++run.version;
    dirty_stages_.insert({run.run.id(), static_cast<int>(&stage - run.stages.data())});
  }
  void TouchAgent(const std::string& name) { dirty_agents_.insert(name); }

  SchedulerOptions options_;
  int64_t next_run_ = 1;
  // Submission seq of the run placed last: the next pass starts after it, so turns
  // rotate across calls and a big early run cannot starve later ones.
  int64_t last_turn_seq_ = 0;
  std::map<std::string, RunEntry> runs_;
  std::map<std::string, AgentEntry> agents_;
  // "<cache>.<key>" -> the latest snapshot a succeeded run left, its holder, its origin.
  struct KeyedSnapshot {
    std::string digest;
    std::string holder;
    std::string source;
    int64_t bytes = 0;
    int64_t files = 0;
    absl::Time last_used;
    std::string run_id;  // the run that left it
  };
  std::map<std::string, KeyedSnapshot> keyed_;
  std::set<std::string> dirty_runs_;
  std::set<std::pair<std::string, int>> dirty_stages_;  // (run id, stage index)
  std::set<std::string> dirty_agents_;
};


}  // namespace dockyard
