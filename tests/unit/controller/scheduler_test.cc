#include "controller/scheduler.h"

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dockyard {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

struct StageOpts {
  std::vector<std::string> needs;
  std::vector<std::string> labels;
  std::vector<std::string> caches;  // names of pipeline caches the stage mounts
  int retries = 0;
};

v1::Stage MakeStage(const std::string& name, const StageOpts& opts = {}) {
  v1::Stage stage;
  stage.set_name(name);
  stage.set_image("alpine:3");
  stage.set_run("true");
  for (const std::string& need : opts.needs) stage.add_needs(need);
  for (const std::string& label : opts.labels) stage.add_agent_labels(label);
  for (const std::string& cache : opts.caches) {
    v1::CacheMount* mount = stage.add_caches();
    mount->set_name(cache);
    mount->set_path("/cache/" + cache);
  }
  stage.set_retries(opts.retries);
  return stage;
}

v1::Pipeline MakePipeline(std::initializer_list<v1::Stage> stages,
                          std::initializer_list<std::pair<std::string, std::string>> caches = {}) {
  v1::Pipeline pipeline;
  pipeline.set_name("demo");
  pipeline.set_source_digest(std::string(64, 'a'));
  for (const auto& [name, key] : caches) {
    v1::CacheSpec* cache = pipeline.add_caches();
    cache->set_name(name);
    cache->set_key(key);
  }
  for (const v1::Stage& stage : stages) *pipeline.add_stages() = stage;
  return pipeline;
}

// A pipeline of `n` independent stages s0..s(n-1).
v1::Pipeline Independent(int n) {
  v1::Pipeline pipeline = MakePipeline({});
  for (int i = 0; i < n; ++i) *pipeline.add_stages() = MakeStage("s" + std::to_string(i));
  return pipeline;
}

v1::StageRef Ref(const std::string& run, const std::string& stage, int attempt) {
  v1::StageRef ref;
  ref.set_run_id(run);
  ref.set_stage(stage);
  ref.set_attempt(attempt);
  return ref;
}

struct AgentOpts {
  int slots = 1;
  std::vector<std::string> labels;
  std::vector<v1::StageRef> running;
  std::vector<std::string> cache_keys;
};

v1::RegisterAgent Agent(const std::string& name, const AgentOpts& opts = {}) {
  v1::RegisterAgent agent;
  agent.set_name(name);
  agent.set_slots(opts.slots);
  agent.set_version("test");
  for (const std::string& label : opts.labels) agent.add_labels(label);
  for (const v1::StageRef& ref : opts.running) *agent.add_running() = ref;
  for (const std::string& key : opts.cache_keys) agent.add_cache_keys(key);
  return agent;
}

v1::StageStatus Status(const v1::StageRef& ref, v1::StageState state, int exit_code = 0,
                       const std::string& message = "") {
  v1::StageStatus status;
  *status.mutable_stage() = ref;
  status.set_state(state);
  status.set_exit_code(exit_code);
  status.set_message(message);
  return status;
}

// One assignment order, flattened for readable expectations.
struct Placement {
  std::string agent;
  std::string run;
  std::string stage;
  int attempt = 0;
};

std::vector<Placement> Assignments(const SchedulerEffects& effects) {
  std::vector<Placement> out;
  for (const AgentOrder& order : effects.orders) {
    if (!order.message.has_assign()) continue;
    const v1::StageRef& ref = order.message.assign().stage();
    out.push_back({order.agent, ref.run_id(), ref.stage(), ref.attempt()});
  }
  return out;
}

std::vector<AgentOrder> OrdersOfKind(const SchedulerEffects& effects,
                                     v1::ControllerMessage::KindCase kind) {
  std::vector<AgentOrder> out;
  for (const AgentOrder& order : effects.orders) {
    if (order.message.kind_case() == kind) out.push_back(order);
  }
  return out;
}

v1::Run RunOf(const Scheduler& scheduler, const std::string& run_id) {
  absl::StatusOr<v1::Run> run = scheduler.GetRun(run_id);
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? *run : v1::Run();
}

v1::StageInfo StageOf(const Scheduler& scheduler, const std::string& run_id,
                      const std::string& stage) {
  const v1::Run run = RunOf(scheduler, run_id);
  for (const v1::StageInfo& info : run.stages()) {
    if (info.name() == stage) return info;
  }
  ADD_FAILURE() << "no stage " << stage << " in run " << run_id;
  return v1::StageInfo();
}

v1::AgentInfo AgentOf(const Scheduler& scheduler, const std::string& name) {
  for (const v1::AgentInfo& info : scheduler.Agents()) {
    if (info.name() == name) return info;
  }
  ADD_FAILURE() << "no agent " << name;
  return v1::AgentInfo();
}

// Reports `state` for `ref` from `agent` and expects it to be accepted.
SchedulerEffects Report(Scheduler& scheduler, const std::string& agent, const v1::StageRef& ref,
                        v1::StageState state, int exit_code = 0, const std::string& message = "",
                        absl::Time now = kT0) {
  absl::StatusOr<SchedulerEffects> effects =
      scheduler.ApplyStatus(agent, Status(ref, state, exit_code, message), now);
  EXPECT_TRUE(effects.ok()) << effects.status();
  return effects.ok() ? std::move(*effects) : SchedulerEffects();
}

TEST(Scheduler, StagesWithoutNeedsAreQueuedAtOnce) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("lint"), MakeStage("test"), MakeStage("build", {.needs = {"lint"}})}), kT0);

  EXPECT_EQ(run, "1");
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_QUEUED);
  EXPECT_EQ(StageOf(scheduler, run, "lint").state(), v1::STAGE_QUEUED);
  EXPECT_EQ(StageOf(scheduler, run, "test").state(), v1::STAGE_QUEUED);
  EXPECT_EQ(StageOf(scheduler, run, "build").state(), v1::STAGE_PENDING);
  EXPECT_EQ(StageOf(scheduler, run, "lint").attempt(), 0);
}

TEST(Scheduler, RunIdsCountUpFromOne) {
  Scheduler scheduler({});
  EXPECT_EQ(scheduler.AddRun(Independent(1), kT0), "1");
  EXPECT_EQ(scheduler.AddRun(Independent(1), kT0), "2");
  EXPECT_EQ(scheduler.GetRun("3").status().code(), absl::StatusCode::kNotFound);
}

TEST(Scheduler, QueuedStageIsAssignedWhenAnAgentWithFreeSlotsRegisters) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(MakePipeline({MakeStage("lint")}), kT0);

  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), IsEmpty());
  EXPECT_EQ(StageOf(scheduler, run, "lint").message(), "waiting: no agent is connected");

  EXPECT_THAT(scheduler.AgentConnected(Agent("a"), kT0).orders, IsEmpty());
  SchedulerEffects effects = scheduler.Schedule(kT0);

  ASSERT_EQ(effects.orders.size(), 1u);
  const AgentOrder& order = effects.orders[0];
  EXPECT_EQ(order.agent, "a");
  ASSERT_TRUE(order.message.has_assign());
  const v1::StageAssignment& assign = order.message.assign();
  EXPECT_EQ(assign.stage().run_id(), run);
  EXPECT_EQ(assign.stage().stage(), "lint");
  EXPECT_EQ(assign.stage().attempt(), 1);
  EXPECT_EQ(assign.spec().image(), "alpine:3");
  EXPECT_EQ(assign.pipeline_name(), "demo");
  EXPECT_EQ(assign.source_digest(), std::string(64, 'a'));

  const v1::StageInfo lint = StageOf(scheduler, run, "lint");
  EXPECT_EQ(lint.state(), v1::STAGE_ASSIGNED);
  EXPECT_EQ(lint.agent(), "a");
  EXPECT_EQ(lint.attempt(), 1);
  EXPECT_EQ(lint.message(), "");
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_RUNNING);
  EXPECT_TRUE(scheduler.CheckHolder("a", Ref(run, "lint", 1)).ok());
}

TEST(Scheduler, StageWaitsForItsNeeds) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("build"), MakeStage("test", {.needs = {"build"}})}), kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 4}), kT0);

  // Free slots are not enough: "test" stays pending while "build" runs.
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), ElementsAre(testing::Field(&Placement::stage, "build")));
  Report(scheduler, "a", Ref(run, "build", 1), v1::STAGE_RUNNING);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), IsEmpty());
  EXPECT_EQ(StageOf(scheduler, run, "test").state(), v1::STAGE_PENDING);

  Report(scheduler, "a", Ref(run, "build", 1), v1::STAGE_SUCCEEDED);
  EXPECT_EQ(StageOf(scheduler, run, "test").state(), v1::STAGE_QUEUED);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), ElementsAre(testing::Field(&Placement::stage, "test")));

  Report(scheduler, "a", Ref(run, "test", 1), v1::STAGE_SUCCEEDED);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_SUCCEEDED);
}

TEST(Scheduler, FailedStageSkipsItsDependentsTransitivelyAndFailsTheRun) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("build"), MakeStage("test", {.needs = {"build"}}),
                    MakeStage("publish", {.needs = {"test"}}), MakeStage("lint")}),
      kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 2}), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 2u);  // build and lint

  SchedulerEffects effects = Report(scheduler, "a", Ref(run, "build", 1), v1::STAGE_FAILED, 2, "exit code 2");
  ASSERT_EQ(effects.ended.size(), 1u);
  EXPECT_EQ(effects.ended[0].ref.stage(), "build");
  EXPECT_EQ(effects.ended[0].state, v1::STAGE_FAILED);

  EXPECT_EQ(StageOf(scheduler, run, "build").exit_code(), 2);
  EXPECT_EQ(StageOf(scheduler, run, "test").state(), v1::STAGE_SKIPPED);
  EXPECT_EQ(StageOf(scheduler, run, "test").message(), "skipped: needs build, which did not succeed");
  EXPECT_EQ(StageOf(scheduler, run, "publish").state(), v1::STAGE_SKIPPED);
  EXPECT_EQ(StageOf(scheduler, run, "publish").message(), "skipped: needs test, which did not succeed");
  // An independent stage still runs to its end before the run is settled.
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_RUNNING);

  Report(scheduler, "a", Ref(run, "lint", 1), v1::STAGE_SUCCEEDED);
  const v1::Run finished = RunOf(scheduler, run);
  EXPECT_EQ(finished.state(), v1::RUN_FAILED);
  EXPECT_EQ(finished.message(), "stage build failed: exit code 2");
  EXPECT_GT(finished.finished_unix_ms(), 0);
}

TEST(Scheduler, NeverAssignsAnAgentMoreStagesThanItHasSlots) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(Independent(5), kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 2}), kT0);

  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0));
  ASSERT_EQ(placed.size(), 2u);
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 2);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), IsEmpty());
  EXPECT_EQ(StageOf(scheduler, run, "s2").message(), "waiting for a free slot");

  // RUNNING still holds the slot; only a terminal report frees it.
  Report(scheduler, "a", Ref(run, placed[0].stage, 1), v1::STAGE_RUNNING);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), IsEmpty());
  Report(scheduler, "a", Ref(run, placed[0].stage, 1), v1::STAGE_SUCCEEDED);
  EXPECT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 2);
}

TEST(Scheduler, StageRunsOnlyOnAnAgentCarryingAllItsLabels) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("train", {.labels = {"linux", "gpu"}})}), kT0);
  // "big" would win on free slots; only "gpu" carries both labels.
  scheduler.AgentConnected(Agent("big", {.slots = 8, .labels = {"linux", "x86"}}), kT0);
  scheduler.AgentConnected(Agent("gpubox", {.slots = 1, .labels = {"gpu", "linux"}}), kT0);
  scheduler.AgentConnected(Agent("gpuonly", {.slots = 8, .labels = {"gpu"}}), kT0);

  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0));
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].agent, "gpubox");
  EXPECT_EQ(StageOf(scheduler, run, "train").agent(), "gpubox");
}

TEST(Scheduler, StageNoConnectedAgentCanTakeSaysWhichLabelIsMissing) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("train", {.labels = {"gpu"}}),
                    MakeStage("both", {.labels = {"gpu", "arm64"}})}),
      kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 4, .labels = {"linux"}}), kT0);

  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), IsEmpty());
  EXPECT_EQ(StageOf(scheduler, run, "train").state(), v1::STAGE_QUEUED);
  EXPECT_EQ(StageOf(scheduler, run, "train").message(), "waiting: no connected agent has label gpu");
  EXPECT_EQ(StageOf(scheduler, run, "both").message(),
            "waiting: no connected agent has labels gpu, arm64");

  // Once such an agent connects, the stage is placed there.
  scheduler.AgentConnected(Agent("g", {.labels = {"gpu"}}), kT0);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)),
              ElementsAre(testing::AllOf(testing::Field(&Placement::agent, "g"),
                                         testing::Field(&Placement::stage, "train"))));
}

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

TEST(Scheduler, AssignmentCarriesTheCachesTheStageMounts) {
  Scheduler scheduler({});
  scheduler.AddRun(MakePipeline({MakeStage("build", {.caches = {"pip"}})}, {{"pip", "v1"}, {"npm", ""}}),
                   kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  SchedulerEffects effects = scheduler.Schedule(kT0);
  ASSERT_EQ(effects.orders.size(), 1u);
  const v1::StageAssignment& assign = effects.orders[0].message.assign();
  ASSERT_EQ(assign.caches_size(), 1);
  EXPECT_EQ(assign.caches(0).name(), "pip");
  EXPECT_EQ(assign.caches(0).key(), "v1");
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

TEST(Scheduler, WithoutACachePreferenceTheEmptiestAgentIsChosen) {
  Scheduler scheduler({});
  scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 1}), kT0);
  scheduler.AgentConnected(Agent("b", {.slots = 3}), kT0);
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0)), ElementsAre(testing::Field(&Placement::agent, "b")));
}

TEST(Scheduler, RunsTakeTurnsForTheOnlySlot) {
  Scheduler scheduler({});
  const std::string first = scheduler.AddRun(Independent(4), kT0);
  const std::string second = scheduler.AddRun(Independent(4), kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 1}), kT0);

  std::vector<std::string> runs;
  for (int i = 0; i < 8; ++i) {
    std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0));
    ASSERT_EQ(placed.size(), 1u) << "placement " << i;
    runs.push_back(placed[0].run);
    Report(scheduler, "a", Ref(placed[0].run, placed[0].stage, placed[0].attempt), v1::STAGE_SUCCEEDED);
  }
  EXPECT_THAT(runs, ElementsAre(first, second, first, second, first, second, first, second));
  EXPECT_EQ(RunOf(scheduler, first).state(), v1::RUN_SUCCEEDED);
  EXPECT_EQ(RunOf(scheduler, second).state(), v1::RUN_SUCCEEDED);
}

TEST(Scheduler, RunsTakeTurnsWithinOneSchedulingPass) {
  Scheduler scheduler({});
  const std::string first = scheduler.AddRun(Independent(4), kT0);
  const std::string second = scheduler.AddRun(Independent(4), kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 4}), kT0);

  std::vector<std::string> runs;
  for (const Placement& p : Assignments(scheduler.Schedule(kT0))) runs.push_back(p.run);
  EXPECT_THAT(runs, ElementsAre(first, second, first, second));
}

TEST(Scheduler, StatusFromAnAgentNotHoldingTheAttemptIsFailedPrecondition) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  scheduler.AgentConnected(Agent("b", {.slots = 0}), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);

  absl::StatusOr<SchedulerEffects> effects =
      scheduler.ApplyStatus("b", Status(Ref(run, "s0", 1), v1::STAGE_SUCCEEDED), kT0);
  EXPECT_EQ(effects.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler.CheckHolder("b", Ref(run, "s0", 1)).code(), absl::StatusCode::kFailedPrecondition);
  // Nothing changed: the holder still holds it.
  EXPECT_EQ(StageOf(scheduler, run, "s0").state(), v1::STAGE_ASSIGNED);
  EXPECT_TRUE(scheduler.CheckHolder("a", Ref(run, "s0", 1)).ok());
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 1);
}

TEST(Scheduler, StatusForAStaleAttemptIsFailedPrecondition) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(MakePipeline({MakeStage("flaky", {.retries = 1})}), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  Report(scheduler, "a", Ref(run, "flaky", 1), v1::STAGE_FAILED, 1, "exit code 1");
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);  // attempt 2

  for (v1::StageState state : {v1::STAGE_RUNNING, v1::STAGE_SUCCEEDED}) {
    absl::StatusOr<SchedulerEffects> effects =
        scheduler.ApplyStatus("a", Status(Ref(run, "flaky", 1), state), kT0);
    EXPECT_EQ(effects.status().code(), absl::StatusCode::kFailedPrecondition)
        << v1::StageState_Name(state);
  }
  EXPECT_EQ(scheduler.ApplyStatus("a", Status(Ref("nope", "flaky", 1), v1::STAGE_RUNNING), kT0)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StageOf(scheduler, run, "flaky").state(), v1::STAGE_ASSIGNED);
  EXPECT_EQ(StageOf(scheduler, run, "flaky").attempt(), 2);
  EXPECT_TRUE(scheduler.CheckHolder("a", Ref(run, "flaky", 2)).ok());
}

TEST(Scheduler, AgentMayNotReportANonAgentState) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  EXPECT_EQ(scheduler.ApplyStatus("a", Status(Ref(run, "s0", 1), v1::STAGE_QUEUED), kT0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Scheduler, StagesOfAnAgentGoneBeyondTheLeaseAreRequeuedWithTheNextAttempt) {
  Scheduler scheduler({.lease_timeout = absl::Seconds(30), .lost_agent_retries = 1});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_RUNNING);

  scheduler.AgentDisconnected("a", kT0);
  SchedulerEffects effects = scheduler.ExpireLeases(kT0 + absl::Seconds(29));
  EXPECT_THAT(effects.ended, IsEmpty());
  EXPECT_EQ(StageOf(scheduler, run, "s0").state(), v1::STAGE_RUNNING);

  effects = scheduler.ExpireLeases(kT0 + absl::Seconds(30));
  ASSERT_EQ(effects.ended.size(), 1u);
  EXPECT_EQ(effects.ended[0].ref.attempt(), 1);
  EXPECT_EQ(effects.ended[0].state, v1::STAGE_LOST);
  v1::StageInfo stage = StageOf(scheduler, run, "s0");
  EXPECT_EQ(stage.state(), v1::STAGE_QUEUED);
  EXPECT_THAT(stage.message(), HasSubstr("attempt 1 lost"));
  EXPECT_THAT(stage.message(), HasSubstr("retrying"));
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 0);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_RUNNING);

  // The "retrying" note survives scheduling passes that cannot place the stage.
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0 + absl::Seconds(31))), IsEmpty());
  EXPECT_THAT(StageOf(scheduler, run, "s0").message(), HasSubstr("retrying"));

  scheduler.AgentConnected(Agent("b"), kT0 + absl::Seconds(40));
  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0 + absl::Seconds(40)));
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].agent, "b");
  EXPECT_EQ(placed[0].attempt, 2);
  EXPECT_EQ(StageOf(scheduler, run, "s0").attempt(), 2);
}

TEST(Scheduler, StageEndsLostWhenLostAgentRetriesRunOut) {
  Scheduler scheduler({.lease_timeout = absl::Seconds(30), .lost_agent_retries = 1});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  absl::Time now = kT0;
  for (const char* agent : {"a", "b"}) {
    scheduler.AgentConnected(Agent(agent), now);
    ASSERT_EQ(Assignments(scheduler.Schedule(now)).size(), 1u);
    scheduler.AgentDisconnected(agent, now);
    now += absl::Minutes(1);
    SchedulerEffects effects = scheduler.ExpireLeases(now);
    ASSERT_EQ(effects.ended.size(), 1u);
    EXPECT_EQ(effects.ended[0].state, v1::STAGE_LOST);
  }
  const v1::StageInfo stage = StageOf(scheduler, run, "s0");
  EXPECT_EQ(stage.state(), v1::STAGE_LOST);
  EXPECT_EQ(stage.attempt(), 2);
  EXPECT_THAT(stage.message(), HasSubstr("agent b did not come back within 30s"));
  const v1::Run finished = RunOf(scheduler, run);
  EXPECT_EQ(finished.state(), v1::RUN_FAILED);
  EXPECT_THAT(finished.message(), HasSubstr("stage s0 lost"));
}

TEST(Scheduler, NoLostAgentRetriesEndsTheStageLostAtOnce) {
  Scheduler scheduler({.lease_timeout = absl::Seconds(5), .lost_agent_retries = 0});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  scheduler.AgentDisconnected("a", kT0);
  scheduler.ExpireLeases(kT0 + absl::Seconds(5));
  EXPECT_EQ(StageOf(scheduler, run, "s0").state(), v1::STAGE_LOST);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_FAILED);
}

TEST(Scheduler, AgentReconnectingWithinTheLeaseKeepsTheAttemptItReports) {
  Scheduler scheduler({.lease_timeout = absl::Seconds(30)});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_RUNNING);

  scheduler.AgentDisconnected("a", kT0);
  SchedulerEffects effects =
      scheduler.AgentConnected(Agent("a", {.running = {Ref(run, "s0", 1)}}), kT0 + absl::Seconds(10));
  EXPECT_THAT(effects.orders, IsEmpty());
  EXPECT_THAT(effects.ended, IsEmpty());
  // Past the lease counted from the disconnect: the reconnect has renewed it.
  EXPECT_THAT(scheduler.ExpireLeases(kT0 + absl::Seconds(35)).ended, IsEmpty());

  EXPECT_EQ(StageOf(scheduler, run, "s0").state(), v1::STAGE_RUNNING);
  EXPECT_EQ(StageOf(scheduler, run, "s0").attempt(), 1);
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 1);
  Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_SUCCEEDED);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_SUCCEEDED);
}

TEST(Scheduler, AgentReconnectingWithoutTheAttemptLosesIt) {
  Scheduler scheduler({.lease_timeout = absl::Seconds(30), .lost_agent_retries = 1});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);

  scheduler.AgentDisconnected("a", kT0);
  SchedulerEffects effects = scheduler.AgentConnected(Agent("a"), kT0 + absl::Seconds(10));
  ASSERT_EQ(effects.ended.size(), 1u);
  EXPECT_EQ(effects.ended[0].ref.attempt(), 1);
  EXPECT_EQ(effects.ended[0].state, v1::STAGE_LOST);
  EXPECT_EQ(StageOf(scheduler, run, "s0").state(), v1::STAGE_QUEUED);
  EXPECT_THAT(StageOf(scheduler, run, "s0").message(), HasSubstr("agent a came back without it"));
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 0);
  EXPECT_EQ(scheduler.CheckHolder("a", Ref(run, "s0", 1)).code(), absl::StatusCode::kFailedPrecondition);

  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0 + absl::Seconds(10)));
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].attempt, 2);
}

TEST(Scheduler, AgentReportingAnAttemptItNoLongerHoldsIsToldToCancelIt) {
  Scheduler scheduler({.lease_timeout = absl::Seconds(30), .lost_agent_retries = 1});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  scheduler.AgentDisconnected("a", kT0);
  scheduler.ExpireLeases(kT0 + absl::Seconds(31));
  scheduler.AgentConnected(Agent("b"), kT0 + absl::Seconds(31));
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0 + absl::Seconds(31))).size(), 1u);  // attempt 2 on b

  SchedulerEffects effects =
      scheduler.AgentConnected(Agent("a", {.running = {Ref(run, "s0", 1)}}), kT0 + absl::Seconds(40));
  ASSERT_EQ(effects.orders.size(), 1u);
  EXPECT_EQ(effects.orders[0].agent, "a");
  ASSERT_TRUE(effects.orders[0].message.has_cancel());
  const v1::CancelStage& cancel = effects.orders[0].message.cancel();
  EXPECT_EQ(cancel.stage().stage(), "s0");
  EXPECT_EQ(cancel.stage().attempt(), 1);
  EXPECT_EQ(cancel.state(), v1::STAGE_LOST);
  EXPECT_THAT(effects.ended, IsEmpty());

  // The current attempt on b is untouched and a gets no slot charged for the stale one.
  EXPECT_TRUE(scheduler.CheckHolder("b", Ref(run, "s0", 2)).ok());
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 0);
}

TEST(Scheduler, RetriesRequeueAFailingStage) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("flaky", {.retries = 1}), MakeStage("after", {.needs = {"flaky"}})}), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);

  SchedulerEffects effects = Report(scheduler, "a", Ref(run, "flaky", 1), v1::STAGE_FAILED, 1, "exit code 1");
  ASSERT_EQ(effects.ended.size(), 1u);
  EXPECT_EQ(effects.ended[0].ref.attempt(), 1);
  EXPECT_EQ(effects.ended[0].state, v1::STAGE_FAILED);
  EXPECT_EQ(StageOf(scheduler, run, "flaky").state(), v1::STAGE_QUEUED);
  EXPECT_EQ(StageOf(scheduler, run, "flaky").message(), "attempt 1 failed (exit code 1); retrying");
  EXPECT_EQ(StageOf(scheduler, run, "after").state(), v1::STAGE_PENDING);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_RUNNING);

  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0));
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].attempt, 2);

  // The retry is used up: the second failure is final.
  Report(scheduler, "a", Ref(run, "flaky", 2), v1::STAGE_FAILED, 1, "exit code 1");
  EXPECT_EQ(StageOf(scheduler, run, "flaky").state(), v1::STAGE_FAILED);
  EXPECT_EQ(StageOf(scheduler, run, "after").state(), v1::STAGE_SKIPPED);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_FAILED);
}

TEST(Scheduler, RetrySucceedingLetsTheRunSucceed) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(MakePipeline({MakeStage("flaky", {.retries = 2})}), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  Report(scheduler, "a", Ref(run, "flaky", 1), v1::STAGE_FAILED, 1);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  Report(scheduler, "a", Ref(run, "flaky", 2), v1::STAGE_SUCCEEDED);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_SUCCEEDED);
}

TEST(Scheduler, CancelRunCancelsWaitingStagesAndStopsActiveOnes) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("running"), MakeStage("queued"), MakeStage("pending", {.needs = {"running"}})}),
      kT0);
  scheduler.AgentConnected(Agent("a", {.slots = 1}), kT0);
  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0));
  ASSERT_EQ(placed.size(), 1u);
  ASSERT_EQ(placed[0].stage, "running");
  Report(scheduler, "a", Ref(run, "running", 1), v1::STAGE_RUNNING);

  absl::StatusOr<SchedulerEffects> effects = scheduler.CancelRun(run, kT0 + absl::Seconds(1));
  ASSERT_TRUE(effects.ok()) << effects.status();
  std::vector<AgentOrder> cancels = OrdersOfKind(*effects, v1::ControllerMessage::kCancel);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].agent, "a");
  EXPECT_EQ(cancels[0].message.cancel().stage().stage(), "running");
  EXPECT_EQ(cancels[0].message.cancel().stage().attempt(), 1);
  EXPECT_EQ(cancels[0].message.cancel().state(), v1::STAGE_CANCELLED);
  ASSERT_EQ(effects->ended.size(), 1u);
  EXPECT_EQ(effects->ended[0].ref.stage(), "running");
  EXPECT_EQ(effects->ended[0].state, v1::STAGE_CANCELLED);

  for (const char* stage : {"running", "queued", "pending"}) {
    EXPECT_EQ(StageOf(scheduler, run, stage).state(), v1::STAGE_CANCELLED) << stage;
  }
  const v1::Run cancelled = RunOf(scheduler, run);
  EXPECT_EQ(cancelled.state(), v1::RUN_CANCELLED);
  EXPECT_EQ(cancelled.message(), "cancelled");

  // Nothing of a cancelled run is placed again, and the agent's late report is refused.
  EXPECT_THAT(Assignments(scheduler.Schedule(kT0 + absl::Seconds(2))), IsEmpty());
  EXPECT_EQ(scheduler.ApplyStatus("a", Status(Ref(run, "running", 1), v1::STAGE_CANCELLED), kT0)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AgentOf(scheduler, "a").busy(), 0);
}

TEST(Scheduler, CancelUnknownRunIsNotFound) {
  Scheduler scheduler({});
  EXPECT_EQ(scheduler.CancelRun("42", kT0).status().code(), absl::StatusCode::kNotFound);
}

TEST(Scheduler, RunVersionIncreasesOnEveryChange) {
  Scheduler scheduler({});
  EXPECT_EQ(scheduler.RunVersion("1"), 0);
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  int64_t version = scheduler.RunVersion(run);
  EXPECT_GT(version, 0);

  auto expect_increase = [&](const char* what) {
    const int64_t now = scheduler.RunVersion(run);
    EXPECT_GT(now, version) << what;
    version = now;
  };
  scheduler.Schedule(kT0);  // sets the "no agent is connected" message
  expect_increase("wait message");
  scheduler.Schedule(kT0);
  EXPECT_EQ(scheduler.RunVersion(run), version) << "a pass that changes nothing";

  scheduler.AgentConnected(Agent("a"), kT0);
  scheduler.Schedule(kT0);
  expect_increase("assigned");
  Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_RUNNING);
  expect_increase("running");
  Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_SUCCEEDED);
  expect_increase("succeeded");
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_SUCCEEDED);
}

TEST(Scheduler, RunFinishedGoesToTheAgentsHoldingTheRunsCaches) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("cached", {.caches = {"pip"}}), MakeStage("plain")}, {{"pip", ""}}), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  scheduler.AgentConnected(Agent("b"), kT0);
  std::vector<Placement> placed = Assignments(scheduler.Schedule(kT0));
  ASSERT_EQ(placed.size(), 2u);
  std::string holder;
  for (const Placement& p : placed) {
    if (p.stage == "cached") holder = p.agent;
  }
  const std::string plain_agent = holder == "a" ? "b" : "a";

  SchedulerEffects effects = Report(scheduler, holder, Ref(run, "cached", 1), v1::STAGE_SUCCEEDED);
  EXPECT_THAT(OrdersOfKind(effects, v1::ControllerMessage::kRunFinished), IsEmpty());

  effects = Report(scheduler, plain_agent, Ref(run, "plain", 1), v1::STAGE_FAILED, 1, "boom");
  std::vector<AgentOrder> finished = OrdersOfKind(effects, v1::ControllerMessage::kRunFinished);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].agent, holder);
  EXPECT_EQ(finished[0].message.run_finished().run_id(), run);
  EXPECT_EQ(RunOf(scheduler, run).state(), v1::RUN_FAILED);
}

TEST(Scheduler, RunWithoutCachesSendsNoRunFinished) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  SchedulerEffects effects = Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_SUCCEEDED);
  EXPECT_THAT(effects.orders, IsEmpty());
}

TEST(Scheduler, CancelledRunWithACacheTellsItsHolder) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(
      MakePipeline({MakeStage("cached", {.caches = {"pip"}})}, {{"pip", ""}}), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  absl::StatusOr<SchedulerEffects> effects = scheduler.CancelRun(run, kT0);
  ASSERT_TRUE(effects.ok());
  std::vector<AgentOrder> finished = OrdersOfKind(*effects, v1::ControllerMessage::kRunFinished);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].agent, "a");
}

}  // namespace
}  // namespace dockyard

namespace dockyard {
namespace {

TEST(Scheduler, RevokedAgentIsToldToStopItsStagesWhichAreRequeuedAtOnce) {
  Scheduler scheduler({});
  const std::string run = scheduler.AddRun(Independent(1), kT0);
  scheduler.AgentConnected(Agent("a"), kT0);
  ASSERT_EQ(Assignments(scheduler.Schedule(kT0)).size(), 1u);
  ASSERT_TRUE(Report(scheduler, "a", Ref(run, "s0", 1), v1::STAGE_RUNNING).orders.empty());
  const absl::Time later = kT0 + absl::Seconds(1);
  ASSERT_EQ(scheduler.LastSeen("a"), kT0);

  SchedulerEffects effects = scheduler.RevokeAgent("a", later);
  const std::vector<AgentOrder> cancels = OrdersOfKind(effects, v1::ControllerMessage::kCancel);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].agent, "a");
  EXPECT_EQ(cancels[0].message.cancel().state(), v1::STAGE_LOST);
  EXPECT_EQ(cancels[0].message.cancel().stage().attempt(), 1);
  // Re-queued now, not after the lease, and never to the revoked agent.
  EXPECT_EQ(StageOf(scheduler, run, "s0").state(), v1::STAGE_QUEUED);
  EXPECT_TRUE(Assignments(scheduler.Schedule(later)).empty());
  scheduler.AgentConnected(Agent("b"), later);
  const std::vector<Placement> placed = Assignments(scheduler.Schedule(later));
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].agent, "b");
  EXPECT_FALSE(scheduler.LastSeen("nobody").has_value());
}

}  // namespace
}  // namespace dockyard
