#include "controller/run_watchers.h"

namespace dockyard {

uint64_t RunWatchers::Add(const std::string& run_id, std::function<void()> wake) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  by_run_[run_id].emplace(id, std::move(wake));
  run_of_.emplace(id, run_id);
  return id;
}

bool RunWatchers::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = run_of_.find(id);
  if (it == run_of_.end()) return false;
  auto run = by_run_.find(it->second);
  run->second.erase(id);
  if (run->second.empty()) by_run_.erase(run);
  run_of_.erase(it);
  return true;
}

std::vector<std::function<void()>> RunWatchers::Take(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  std::vector<std::function<void()>> wakes;
  auto run = by_run_.find(run_id);
  if (run == by_run_.end()) return wakes;
  for (auto& [id, wake] : run->second) {
    wakes.push_back(std::move(wake));
    run_of_.erase(id);
  }
  by_run_.erase(run);
  return wakes;
}

}  // namespace dockyard
