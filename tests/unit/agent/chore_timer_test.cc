// The agent's one thread for timed and handed-off chores.
#include "agent/chore_timer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace dockyard {
namespace {

TEST(ChoreTimer, ChoresRunAtTheirDeadlinesEarliestFirst) {
  ChoreTimer timer;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification all;
  const absl::Time now = absl::Now();
  auto record = [&](int n) {
    return [&, n] {
      absl::MutexLock lock(&mu);
      order.push_back(n);
      if (order.size() == 3) all.Notify();
    };
  };
  timer.At(now + absl::Milliseconds(150), record(3));
  timer.At(now + absl::Milliseconds(50), record(2));
  timer.Post(record(1));
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_GE(absl::Now() - now, absl::Milliseconds(150));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(order, ::testing::ElementsAre(1, 2, 3));
}

TEST(ChoreTimer, ACancelledChoreNeverRunsAndCancellingARunningOneWaitsForIt) {
  ChoreTimer timer;
  std::atomic<bool> ran{false};
  const ChoreTimer::Id later = timer.At(absl::Now() + absl::Milliseconds(100), [&] { ran = true; });
  EXPECT_TRUE(timer.Cancel(later));

  absl::Notification started;
  std::atomic<bool> finished{false};
  const ChoreTimer::Id slow = timer.Post([&] {
    started.Notify();
    absl::SleepFor(absl::Milliseconds(200));
    finished = true;
  });
  started.WaitForNotification();
  EXPECT_FALSE(timer.Cancel(slow));
  EXPECT_TRUE(finished);  // Cancel returned only after it did
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace dockyard
