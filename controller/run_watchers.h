// Who waits for which run to change: RunService's run watchers, woken once a change of
// that run is saved instead of polling for it. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace dockyard {

class RunWatchers {
 public:
  // Returns an id for Remove; `wake` is handed out once, by Take.
  uint64_t Add(const std::string& run_id, std::function<void()> wake);
  // True when the watch was still waiting (it will never be woken now).
  bool Remove(uint64_t id);
  // The wakes of everyone waiting on `run_id`; they wait no more.
  std::vector<std::function<void()>> Take(const std::string& run_id);

 private:
  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::map<uint64_t, std::function<void()>>> by_run_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> run_of_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dockyard
