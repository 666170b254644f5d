// The scheduler's cache rules: where a stage that uses a cache goes, what snapshot
// each attempt starts from, and keyed caches' latest snapshots and their eviction.
#include "controller/scheduler.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/controller/scheduler_test_support.h"

namespace dockyard::scheduler_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A final SUCCEEDED status whose cache `cache` went from `consumed` to `produced`.
v1::StageStatus SucceededWithCache(const v1::StageRef& ref, const std::string& cache, const std::string& consumed,
                                   const std::string& produced) {
  v1::StageStatus status = Status(ref, v1::STAGE_SUCCEEDED);
  v1::CacheDigests* digests = status.add_caches();
  digests->set_name(cache);
  digests->set_consumed(consumed);
  digests->set_produced(produced);
  return status;
}

// The snapshot the assignment in `effects` tells its agent to start `cache` from.
std::string StartOf(const SchedulerEffects& effects, const std::string& cache) {
  for (const AgentOrder& order : effects.orders) {
    for (const v1::CacheDigests& start : order.message.assign().cache_starts()) {
      if (start.name() == cache) return start.consumed();
    }
  }
  return "<none>";
}

TEST(Scheduler, AStageWaitsForTheBusyHolderOfItsCacheUpToTheCacheWaitThenMoves) {
  Scheduler scheduler({.cache_wait = absl::Seconds(30)});
  // After deps, "long" (listed first) takes a's only slot; build must wait for a.
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("deps", {.caches = {"pip"}}), MakeStage("long", {.needs = {"deps"}}),
                    MakeStage("build", {.needs = {"deps"}, .caches = {"pip"}})},
                   {{"pip", ""}}),
      kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 1}), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  ASSERT_TRUE(scheduler.ApplyStatus("a", SucceededWithCache(Ref(run, "deps", 1), "pip", "", "d1"), kT0).ok());
  scheduler.AgentConnected(Agent("b"), kT0);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)),
              ElementsAre(testing::AllOf(testing::Field(&Placement::agent, "a"), testing::Field(&Placement::stage, "long"))));

  EXPECT_THAT(Assignments(scheduler.Schedule(kT0 + absl::Seconds(10))), IsEmpty()) << "b is free, but a holds the cache";
  EXPECT_EQ(StageOf(scheduler, run, "build").message(),
            "waiting up to 30s for a free slot on agent a, which holds this run's cache (--cache_wait)");
  SchedulerEffects moved = scheduler.Schedule(kT0 + absl::Seconds(31));
  EXPECT_THAT(Assignments(moved), ElementsAre(testing::Field(&Placement::agent, "b")));
  EXPECT_EQ(StartOf(moved, "pip"), "d1") << "b restores what deps produced";
  EXPECT_EQ(StageOf(scheduler, run, "build").message(),
            "on agent b, which restores the cache from its snapshot (agent a, which holds it, was busy for 30s)");
}

TEST(Scheduler, WhenTheCacheHolderIsGoneTheNextStageMovesAtOnceWithTheSnapshot) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("deps", {.caches = {"pip"}}),
                    MakeStage("build", {.needs = {"deps"}, .caches = {"pip"}})},
                   {{"pip", ""}}),
      kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  SchedulerEffects first = scheduler.Schedule(kT0);
  EXPECT_EQ(StartOf(first, "pip"), "") << "a new cache starts empty";
  ASSERT_TRUE(scheduler.ApplyStatus("a", SucceededWithCache(Ref(run, "deps", 1), "pip", "", "d1"), kT0).ok());
  scheduler.AgentDisconnected("a", kT0);
  scheduler.AgentConnected(Agent("b"), kT0);

  SchedulerEffects moved = scheduler.Schedule(kT0);
  EXPECT_THAT(Assignments(moved), ElementsAre(testing::Field(&Placement::agent, "b")));
  EXPECT_EQ(StartOf(moved, "pip"), "d1");
  EXPECT_EQ(StageOf(scheduler, run, "build").message(),
            "on agent b, which restores the cache from its snapshot (agent a, which holds it, is not connected)");
  const v1::StageInfo deps = StageOf(scheduler, run, "deps");
  ASSERT_EQ(deps.caches_size(), 1);
  EXPECT_EQ(deps.caches(0).produced(), "d1");
  EXPECT_EQ(StageOf(scheduler, run, "build").caches(0).consumed(), "d1");
}

TEST(Scheduler, ARetriedAttemptStartsFromWhatTheFirstStartedFromAndReadOnlyLeavesTheSnapshot) {
  Scheduler scheduler({});
  v1::Stage check = MakeStage("check", {.needs = {"deps"}, .caches = {"pip"}});
  check.mutable_caches(0)->set_read_only(true);
  v1::Stage build = MakeStage("build", {.needs = {"check"}, .caches = {"pip"}});
  build.set_retries(1);
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("deps", {.caches = {"pip"}}), check, build}, {{"pip", ""}}), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  scheduler.Schedule(kT0);
  ASSERT_TRUE(scheduler.ApplyStatus("a", SucceededWithCache(Ref(run, "deps", 1), "pip", "", "d1"), kT0).ok());
  EXPECT_EQ(StartOf(scheduler.Schedule(kT0), "pip"), "d1");
  ASSERT_TRUE(scheduler.ApplyStatus("a", SucceededWithCache(Ref(run, "check", 1), "pip", "d1", "d1"), kT0).ok());
  EXPECT_EQ(StartOf(scheduler.Schedule(kT0), "pip"), "d1") << "a read-only consumer changes nothing";
  Report(scheduler, "a", Ref(run, "build", 1), v1::STAGE_FAILED, 1);
  EXPECT_EQ(StartOf(scheduler.Schedule(kT0), "pip"), "d1") << "never what the failed attempt left";
}

TEST(Scheduler, AKeyedCacheStartsFromTheKeysLatestSnapshotAndPrefersItsHolder) {
  Scheduler scheduler({});
  const v1::Pipeline pipeline = MakePipeline({MakeStage("build", {.caches = {"pip"}})}, {{"pip", "lock-abc"}});
  const std::string first = scheduler.AddRun(pipeline, kT0);
  scheduler.AgentConnected(Agent("warm", {.slots = 1}), kT0);
  SchedulerEffects effects = scheduler.Schedule(kT0);
  EXPECT_EQ(StartOf(effects, "pip"), "");
  ASSERT_TRUE(scheduler.ApplyStatus("warm", SucceededWithCache(Ref(first, "build", 1), "pip", "", "k1"), kT0).ok());
  EXPECT_EQ(RunOf(scheduler, first).state(), v1::RUN_SUCCEEDED);

  // "roomy" has more free slots; "warm" holds the key's latest snapshot.
  scheduler.AgentConnected(Agent("roomy", {.slots = 8}), kT0);
  const std::string second = scheduler.AddRun(pipeline, kT0);
  effects = scheduler.Schedule(kT0);
  EXPECT_THAT(Assignments(effects), ElementsAre(testing::Field(&Placement::agent, "warm")));
  EXPECT_EQ(StartOf(effects, "pip"), "k1");
  EXPECT_EQ(StageOf(scheduler, second, "build").caches(0).source(), "key lock-abc, from run " + first);
}

TEST(Scheduler, KeyedCachesBeyondTheLimitAreEvictedLeastRecentlyUsedFirstAndStayEvicted) {
  Scheduler scheduler({});
  scheduler.AgentConnected(Agent("a"), kT0);
  auto publish = [&](const std::string& key, const std::string& digest, int64_t bytes, absl::Time at) {
    const std::string run =
        scheduler.AddRun(MakePipeline({MakeStage("s", {.caches = {"pip"}})}, {{"pip", key}}), at);
    scheduler.Schedule(at);
    v1::StageStatus done = SucceededWithCache(Ref(run, "s", 1), "pip", "", digest);
    done.mutable_caches(0)->set_bytes(bytes);
    EXPECT_TRUE(scheduler.ApplyStatus("a", done, at).ok());
    return run;
  };
  const std::string old_run = publish("old", "d-old", 600, kT0);
  publish("new", "d-new", 500, kT0 + absl::Seconds(1));
  ASSERT_EQ(scheduler.Caches().size(), 2u);
  EXPECT_EQ(scheduler.Caches()[0].key(), "new") << "most recently used first";
  EXPECT_EQ(scheduler.LiveCacheSnapshots(), (std::set<std::string>{"d-new", "d-old"}));

  std::vector<v1::CacheInfo> evicted = scheduler.EvictCaches(1000);
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].key(), "old");
  EXPECT_EQ(scheduler.LiveCacheSnapshots(), (std::set<std::string>{"d-new"}));
  EXPECT_THAT(scheduler.EvictCaches(1000), IsEmpty());
  // Saved with the run that left it: a restarted controller does not bring it back.
  absl::StatusOr<v1::RunRecord> record = scheduler.ExportRun(old_run);
  ASSERT_TRUE(record.ok());
  EXPECT_THAT(record->evicted_keys(), ElementsAre("pip.old"));
  // A new run of the evicted key starts empty.
  scheduler.AddRun(MakePipeline({MakeStage("s", {.caches = {"pip"}})}, {{"pip", "old"}}), kT0 + absl::Seconds(2));
  EXPECT_EQ(StartOf(scheduler.Schedule(kT0 + absl::Seconds(2)), "pip"), "");
}

}  // namespace
}  // namespace dockyard::scheduler_test
