// RunWatchers: each watch is handed out once, to the first Take of its run; a watch
// removed before that is never handed out.
#include "controller/run_watchers.h"

#include <gtest/gtest.h>

namespace dockyard {
namespace {

TEST(RunWatchers, TakeHandsOutEveryWatchOfThatRunOnce) {
  RunWatchers watchers;
  int woken = 0;
  watchers.Add("1", [&] { ++woken; });
  watchers.Add("1", [&] { woken += 10; });
  watchers.Add("2", [&] { woken += 100; });
  for (auto& wake : watchers.Take("1")) wake();
  EXPECT_EQ(woken, 11);
  EXPECT_TRUE(watchers.Take("1").empty());
  EXPECT_EQ(watchers.Take("2").size(), 1u);
}

TEST(RunWatchers, ARemovedWatchIsNeverHandedOutAndRemovingItTwiceSaysSo) {
  RunWatchers watchers;
  const uint64_t gone = watchers.Add("1", [] {});
  const uint64_t kept = watchers.Add("1", [] {});
  EXPECT_TRUE(watchers.Remove(gone));
  EXPECT_FALSE(watchers.Remove(gone));
  EXPECT_EQ(watchers.Take("1").size(), 1u);
  EXPECT_FALSE(watchers.Remove(kept));  // already handed out
}

}  // namespace
}  // namespace dockyard
