#include "controller/retention.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dockyard {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Scheduler::RunSummary Finished(const std::string& id, absl::Duration ago) {
  Scheduler::RunSummary run;
  run.id = id;
  run.finished = true;
  run.finished_at = kNow - ago;
  return run;
}

Scheduler::RunSummary Running(const std::string& id) {
  Scheduler::RunSummary run;
  run.id = id;
  return run;
}

TEST(ExpiredRuns, FinishedRunsOlderThanTheAgeLimitGoAndRunsInProgressNever) {
  RetentionPolicy policy;
  policy.max_age = absl::Hours(24);
  const std::vector<Scheduler::RunSummary> runs = {Running("1"), Finished("2", absl::Hours(50)),
                                                   Finished("3", absl::Hours(23)), Finished("10", absl::Hours(25)),
                                                   Running("11")};
  EXPECT_THAT(ExpiredRuns(runs, policy, kNow), ElementsAre("2", "10"));
}

TEST(ExpiredRuns, TheCountLimitKeepsTheNewestFinishedRuns) {
  RetentionPolicy policy;
  policy.max_runs = 2;
  const std::vector<Scheduler::RunSummary> runs = {Finished("1", absl::Hours(4)), Finished("2", absl::Hours(3)),
                                                   Running("3"), Finished("4", absl::Hours(2)),
                                                   Finished("5", absl::Hours(1))};
  EXPECT_THAT(ExpiredRuns(runs, policy, kNow), ElementsAre("1", "2"));
}

TEST(ExpiredRuns, TheRunWithTheHighestIdStaysSoItsNumberIsNeverHandedOutAgain) {
  RetentionPolicy policy;
  policy.max_age = absl::Seconds(1);
  EXPECT_THAT(ExpiredRuns({Finished("8", absl::Hours(9)), Finished("9", absl::Hours(9))}, policy, kNow),
              ElementsAre("8"));
}

TEST(ExpiredRuns, NoLimitsRemoveNothing) {
  EXPECT_THAT(ExpiredRuns({Finished("1", absl::Hours(9999)), Finished("2", absl::Hours(1))}, RetentionPolicy(), kNow),
              IsEmpty());
}

}  // namespace
}  // namespace dockyard
