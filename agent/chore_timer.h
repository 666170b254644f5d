// One thread for an agent's timed and handed-off chores: stage timeouts at their
// deadline, and the Docker work a gRPC reaction must not wait for (cancels, clean-up
// of orphans and volumes). Chores run one at a time, earliest deadline first, so the
// agent's threads stay bounded: this one, one per running stage, and its sessions'.
// A chore must not wait for another chore; one that must wait re-schedules itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace dockyard {

class ChoreTimer {
 public:
  using Id = uint64_t;

  ChoreTimer();
  // Runs the chores already due, drops the rest, and joins.
  ~ChoreTimer();
  ChoreTimer(const ChoreTimer&) = delete;
  ChoreTimer& operator=(const ChoreTimer&) = delete;

  // Runs `chore` at `when` (now, if that has passed). Thread-safe, never blocks.
  Id At(absl::Time when, std::function<void()> chore);
  Id Post(std::function<void()> chore) { return At(absl::InfinitePast(), std::move(chore)); }
  // Calls the chore off: when it is running, waits until it has returned. Returns
  // whether it was called off before it started. Never call it from a chore.
  bool Cancel(Id id);

 private:
  void Loop();

  absl::Mutex mu_;
  std::multimap<absl::Time, std::pair<Id, std::function<void()>>> due_ ABSL_GUARDED_BY(mu_);
  Id last_id_ ABSL_GUARDED_BY(mu_) = 0;
  Id running_ ABSL_GUARDED_BY(mu_) = 0;  // the chore the thread runs now (0: none)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace dockyard
