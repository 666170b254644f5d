#include "controller/scheduler.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/controller/scheduler_test_support.h"

namespace dockyard::scheduler_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

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
}  // namespace dockyard::scheduler_test
