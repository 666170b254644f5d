// The scheduler's persistence: what changed since the last save, each run and
// agent as a record, and the whole state restored from records after a restart.
#include "controller/scheduler.h"

#include <algorithm>
#include <climits>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "controller/scheduler_refs.h"

namespace dockyard {

using scheduler_refs::IsActive;
using scheduler_refs::Key;
using scheduler_refs::Ref;

std::vector<std::string> Scheduler::TakeDirtyRuns() {
  std::vector<std::string> out(dirty_runs_.begin(), dirty_runs_.end());
  dirty_runs_.clear();
  for (const std::string& id : out) {
    dirty_stages_.erase(dirty_stages_.lower_bound({id, 0}), dirty_stages_.lower_bound({id, INT_MAX}));
  }
  return out;
}

std::vector<v1::StageRecord> Scheduler::TakeDirtyStages() {
  std::vector<v1::StageRecord> out;
  for (const auto& [id, index] : dirty_stages_) {
    auto it = runs_.find(id);
    if (it == runs_.end() || dirty_runs_.count(id) != 0) continue;  // gone, or saved whole
    const RunEntry& run = it->second;
    const StageEntry& stage = run.stages[static_cast<size_t>(index)];
    v1::StageRecord& record = out.emplace_back();
    record.set_run_id(id);
    record.set_index(index);
    *record.mutable_info() = stage.info;
    record.set_lost_retries_left(stage.lost_retries_left);
    record.set_fail_retries_left(stage.fail_retries_left);
    record.set_run_version(run.version);
  }
  dirty_stages_.clear();
  return out;
}

std::vector<std::string> Scheduler::TakeDirtyAgents() {
  std::vector<std::string> out(dirty_agents_.begin(), dirty_agents_.end());
  dirty_agents_.clear();
  return out;
}

absl::StatusOr<v1::RunRecord> Scheduler::ExportRun(const std::string& run_id) const {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  const RunEntry& run = it->second;
  v1::RunRecord record;
  *record.mutable_pipeline() = run.pipeline;
  *record.mutable_run() = run.run;
  record.mutable_run()->clear_stages();
  for (const StageEntry& stage : run.stages) {
    *record.mutable_run()->add_stages() = stage.info;
    record.add_lost_retries_left(stage.lost_retries_left);
    record.add_fail_retries_left(stage.fail_retries_left);
  }
  record.mutable_cache_agent()->insert(run.cache_agent.begin(), run.cache_agent.end());
  record.mutable_cache_snapshot()->insert(run.cache_snapshot.begin(), run.cache_snapshot.end());
  record.mutable_cache_source()->insert(run.cache_source.begin(), run.cache_source.end());
  for (const std::string& host : run.cache_hosts) record.add_cache_hosts(host);
  for (const std::string& key : run.evicted_keys) record.add_evicted_keys(key);
  record.set_seq(run.seq);
  record.set_version(run.version);
  return record;
}

absl::StatusOr<v1::AgentRecord> Scheduler::ExportAgent(const std::string& name) const {
  auto it = agents_.find(name);
  if (it == agents_.end()) return absl::NotFoundError(absl::StrCat("no agent ", name));
  const AgentEntry& agent = it->second;
  v1::AgentRecord record;
  *record.mutable_registration() = agent.registration;
  // The registration's own list is what the agent said when it connected; `running`
  // below is what it holds now.
  record.mutable_registration()->clear_running();
  for (const AttemptKey& key : agent.running) *record.add_running() = Ref(key);
  record.set_drained(agent.drained);
  return record;
}

absl::Status Scheduler::Restore(std::vector<v1::RunRecord> runs, std::vector<v1::AgentRecord> agents,
                                absl::Time now) {
  runs_.clear();
  agents_.clear();
  next_run_ = 1;
  std::vector<std::string> problems;
  for (v1::RunRecord& record : runs) {
    const std::string id = record.run().id();
    const int n = record.pipeline().stages_size();
    int64_t number = 0;
    if (!absl::SimpleAtoi(id, &number) || number < 1 || runs_.count(id) != 0 ||
        record.run().stages_size() != n || record.lost_retries_left_size() != n ||
        record.fail_retries_left_size() != n) {
      problems.push_back(absl::StrCat("run \"", id, "\" skipped"));
      continue;
    }
    bool names_match = true;
    for (int i = 0; i < n; ++i) {
      names_match = names_match && record.run().stages(i).name() == record.pipeline().stages(i).name();
    }
    if (!names_match) {
      problems.push_back(absl::StrCat("run \"", id, "\" skipped"));
      continue;
    }
    RunEntry& run = runs_[id];
    run.pipeline = std::move(*record.mutable_pipeline());
    run.run = std::move(*record.mutable_run());
    for (int i = 0; i < n; ++i) {
      StageEntry& stage = run.stages.emplace_back();
      stage.spec = run.pipeline.stages(i);
      stage.info = run.run.stages(i);
      stage.lost_retries_left = record.lost_retries_left(i);
      stage.fail_retries_left = record.fail_retries_left(i);
      if (stage.info.state() == v1::STAGE_QUEUED) run.queued.insert(i);
    }
    run.run.clear_stages();  // filled in from `stages` on GetRun
    run.cache_agent.insert(record.cache_agent().begin(), record.cache_agent().end());
    run.cache_snapshot.insert(record.cache_snapshot().begin(), record.cache_snapshot().end());
    run.cache_source.insert(record.cache_source().begin(), record.cache_source().end());
    run.cache_hosts.insert(record.cache_hosts().begin(), record.cache_hosts().end());
    run.evicted_keys.insert(record.evicted_keys().begin(), record.evicted_keys().end());
    run.seq = record.seq();
    run.version = record.version();
    next_run_ = std::max(next_run_, number + 1);
  }
  // Each key's latest snapshot: the last succeeded run's.
  keyed_.clear();
  std::vector<const RunEntry*> succeeded;
  for (const auto& [id, run] : runs_) {
    if (run.run.state() == v1::RUN_SUCCEEDED) succeeded.push_back(&run);
  }
  std::sort(succeeded.begin(), succeeded.end(),
            [](auto* a, auto* b) { return a->run.finished_unix_ms() < b->run.finished_unix_ms(); });
  for (const RunEntry* run : succeeded) PublishKeyedCaches(*run, absl::FromUnixMillis(run->run.finished_unix_ms()));
  for (v1::AgentRecord& record : agents) {
    const std::string name = record.registration().name();
    if (name.empty() || agents_.count(name) != 0) {
      problems.push_back(absl::StrCat("agent \"", name, "\" skipped"));
      continue;
    }
    AgentEntry& agent = agents_[name];
    agent.registration = std::move(*record.mutable_registration());
    agent.drained = record.drained();
    // Gone until it says otherwise; ExpireLeases takes its stages once the lease is up.
    agent.connected = false;
    agent.last_seen = now;
    agent.disconnected_at = now;
    for (const v1::StageRef& ref : record.running()) agent.running.insert(Key(ref));
  }
  // Every live attempt has a holder whose lease can run out, even if its agent's
  // record is missing: otherwise the stage would wait for it forever.
  for (const auto& [id, run] : runs_) {
    for (const StageEntry& stage : run.stages) {
      if (!IsActive(stage.info.state()) || stage.info.agent().empty()) continue;
      AgentEntry& agent = agents_[stage.info.agent()];
      if (agent.registration.name().empty()) {
        problems.push_back(absl::StrCat("agent \"", stage.info.agent(), "\" missing"));
        agent.registration.set_name(stage.info.agent());
        agent.last_seen = now;
        agent.disconnected_at = now;
      }
      agent.running.insert(Key(Ref(id, stage.info)));
    }
  }
  dirty_runs_.clear();
  dirty_stages_.clear();
  dirty_agents_.clear();
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat("inconsistent saved state: ", absl::StrJoin(problems, ", ")));
  }
  return absl::OkStatus();
}

}  // namespace dockyard
