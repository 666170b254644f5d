#include "agent/chore_timer.h"

#include "absl/time/clock.h"

namespace dockyard {

ChoreTimer::ChoreTimer() : thread_([this] { Loop(); }) {}

ChoreTimer::~ChoreTimer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

ChoreTimer::Id ChoreTimer::At(absl::Time when, std::function<void()> chore) {
  absl::MutexLock lock(&mu_);
  const Id id = ++last_id_;
  due_.emplace(when, std::make_pair(id, std::move(chore)));
  return id;
}

bool ChoreTimer::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  for (auto it = due_.begin(); it != due_.end(); ++it) {
    if (it->second.first == id) {
      due_.erase(it);
      return true;
    }
  }
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_ != id; };
  mu_.Await(absl::Condition(&done));
  return false;
}

void ChoreTimer::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    const absl::Time now = absl::Now();
    if (!due_.empty() && due_.begin()->first <= now) {
      auto next = due_.extract(due_.begin());
      running_ = next.mapped().first;
      std::function<void()> chore = std::move(next.mapped().second);
      mu_.Unlock();
      chore();
      chore = nullptr;  // what it captured goes before Cancel may return
      mu_.Lock();
      running_ = 0;
      continue;
    }
    if (stopping_) return;
    // Wakes for a new chore (it may be due sooner), a stop, or the next deadline.
    const Id known = last_id_;
    auto changed = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || last_id_ != known; };
    const absl::Duration wait = due_.empty() ? absl::Hours(1) : due_.begin()->first - now;
    mu_.AwaitWithTimeout(absl::Condition(&changed), wait);
  }
}

}  // namespace dockyard
