#include "controller/state_persister.h"

#include <iterator>
#include <utility>

#include "common/logging.h"

namespace dockyard {

StatePersister::StatePersister(Save save, Deliver deliver)
    : save_(std::move(save)), deliver_(std::move(deliver)), thread_([this] { Loop(); }) {}

StatePersister::~StatePersister() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void StatePersister::Enqueue(StateChanges changes, std::vector<Delivery> deliveries) {
  if (changes.empty() && deliveries.empty() && changes.after_save.empty()) return;
  absl::MutexLock lock(&mu_);
  for (v1::RunRecord& run : changes.runs) {
    // The run's record carries its stages: stage records older than it are moot.
    const std::string& id = run.run().id();
    for (auto it = stages_.lower_bound({id, 0}); it != stages_.end() && it->first.first == id;) {
      it = it->second.run_version() <= run.version() ? stages_.erase(it) : std::next(it);
    }
    runs_[id] = std::move(run);
  }
  for (v1::StageRecord& stage : changes.stages) {
    stages_[{stage.run_id(), stage.index()}] = std::move(stage);
  }
  for (v1::AgentRecord& agent : changes.agents) agents_[agent.registration().name()] = std::move(agent);
  for (v1::Artifact& artifact : changes.artifacts) artifacts_.push_back(std::move(artifact));
  for (Delivery& delivery : deliveries) deliveries_.push_back(std::move(delivery));
  for (auto& wake : changes.after_save) after_save_.push_back(std::move(wake));
  ++enqueued_;
}

void StatePersister::Sync() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = enqueued_;
  auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_ >= target; };
  mu_.Await(absl::Condition(&reached));
}

void StatePersister::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || enqueued_ > done_; };
    mu_.Await(absl::Condition(&ready));
    if (enqueued_ == done_) return;  // stopping, nothing left
    const uint64_t batch_end = enqueued_;
    StateChanges changes;
    for (auto& [id, run] : runs_) changes.runs.push_back(std::move(run));
    for (auto& [key, stage] : stages_) changes.stages.push_back(std::move(stage));
    for (auto& [name, agent] : agents_) changes.agents.push_back(std::move(agent));
    changes.artifacts = std::move(artifacts_);
    runs_.clear();
    stages_.clear();
    agents_.clear();
    artifacts_.clear();
    std::vector<Delivery> deliveries = std::move(deliveries_);
    deliveries_.clear();
    std::vector<std::function<void()>> after_save = std::move(after_save_);
    after_save_.clear();
    mu_.Unlock();
    absl::Status saved = changes.empty() ? absl::OkStatus() : save_(changes);
    mu_.Lock();
    if (!saved.ok()) {
      // Keep serving: the records go again with the next save (a newer copy of one
      // wins); until one succeeds, a restart would resume from older state.
      Logger("controller")->error("cannot save runs={} stages={} agents={} artifacts={}; a restart now would lose "
                                  "these changes: {}",
                                  changes.runs.size(), changes.stages.size(), changes.agents.size(),
                                  changes.artifacts.size(), saved.ToString());
      for (v1::RunRecord& run : changes.runs) runs_.try_emplace(run.run().id(), std::move(run));
      for (v1::StageRecord& stage : changes.stages) {
        stages_.try_emplace({stage.run_id(), stage.index()}, std::move(stage));
      }
      for (v1::AgentRecord& agent : changes.agents) agents_.try_emplace(agent.registration().name(), std::move(agent));
      artifacts_.insert(artifacts_.begin(), std::make_move_iterator(changes.artifacts.begin()),
                        std::make_move_iterator(changes.artifacts.end()));
    }
    mu_.Unlock();
    if (!deliveries.empty()) deliver_(std::move(deliveries));
    for (auto& wake : after_save) wake();
    mu_.Lock();
    done_ = batch_end;
    // A failed save is tried again on the next batch, not in a loop here.
  }
}

}  // namespace dockyard
