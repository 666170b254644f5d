// The scheduler's read-only answers: a run, its version and pipeline, the agents,
// and whether an agent holds a stage of a run (for source and artifact fetches);
// and what retention needs (every run's summary, forgetting finished runs).
#include "controller/scheduler.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/states.h"
#include "controller/scheduler_refs.h"

namespace dockyard {

using scheduler_refs::IsActive;
using scheduler_refs::Ref;

bool Scheduler::NeedsSource(const std::string& agent, const std::string& digest) const {
  for (const auto& [id, run] : runs_) {
    if (run.pipeline.source_digest() != digest) continue;
    for (const StageEntry& stage : run.stages) {
      if (stage.info.agent() == agent && IsActive(stage.info.state())) return true;
    }
  }
  return false;
}

bool Scheduler::HoldsAttemptOf(const std::string& agent, const std::string& run_id) const {
  auto run = runs_.find(run_id);
  if (run == runs_.end()) return false;
  for (const StageEntry& stage : run->second.stages) {
    if (stage.info.agent() == agent && IsActive(stage.info.state())) return true;
  }
  return false;
}

absl::StatusOr<v1::Run> Scheduler::GetRun(const std::string& run_id) const {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  v1::Run run = it->second.run;
  for (const StageEntry& stage : it->second.stages) *run.add_stages() = stage.info;
  return run;
}

int64_t Scheduler::RunVersion(const std::string& run_id) const {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? 0 : it->second.version;
}

absl::StatusOr<v1::Pipeline> Scheduler::GetPipeline(const std::string& run_id) const {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  return it->second.pipeline;
}

std::vector<Scheduler::RunSummary> Scheduler::RunSummaries() const {
  std::vector<RunSummary> out;
  out.reserve(runs_.size());
  for (const auto& [id, run] : runs_) {
    RunSummary& summary = out.emplace_back();
    summary.id = id;
    summary.finished = IsFinished(run.run.state());
    summary.finished_at = absl::FromUnixMillis(run.run.finished_unix_ms());
    summary.source_digest = run.pipeline.source_digest();
  }
  return out;
}

void Scheduler::ForgetRuns(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    auto it = runs_.find(id);
    if (it != runs_.end() && IsFinished(it->second.run.state())) runs_.erase(it);
  }
}

std::vector<v1::AgentInfo> Scheduler::Agents() const {
  std::vector<v1::AgentInfo> out;
  for (const auto& [name, agent] : agents_) {
    v1::AgentInfo& info = out.emplace_back();
    info.set_name(name);
    info.mutable_labels()->CopyFrom(agent.registration.labels());
    info.set_slots(agent.registration.slots());
    info.set_busy(static_cast<int>(agent.running.size()));
    info.set_connected(agent.connected);
    info.set_version(agent.registration.version());
    info.set_draining(Draining(agent));
    for (const AttemptKey& key : agent.running) *info.add_running() = Ref(key);
  }
  return out;
}

}  // namespace dockyard
