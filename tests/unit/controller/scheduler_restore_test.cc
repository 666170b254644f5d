// The scheduler's state survives a restart: what it exports restores into an equal
// scheduler, and the change tracking names exactly what must be saved.
#include <string>
#include <vector>

#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "controller/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dockyard {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::Pipeline TwoStages() {
  v1::Pipeline pipeline;
  pipeline.set_name("demo");
  v1::CacheSpec* cache = pipeline.add_caches();
  cache->set_name("pip");
  for (const char* name : {"build", "test"}) {
    v1::Stage* stage = pipeline.add_stages();
    stage->set_name(name);
    stage->set_image("alpine:3");
    stage->set_retries(2);
    if (std::string(name) == "test") stage->add_needs("build");
    v1::CacheMount* mount = stage->add_caches();
    mount->set_name("pip");
    mount->set_path("/cache/pip");
  }
  return pipeline;
}

v1::RegisterAgent Agent(const std::string& name, std::vector<v1::StageRef> running = {}) {
  v1::RegisterAgent agent;
  agent.set_name(name);
  agent.set_slots(1);
  for (const v1::StageRef& ref : running) *agent.add_running() = ref;
  return agent;
}

v1::StageRef Ref(const std::string& run, const std::string& stage, int attempt) {
  v1::StageRef ref;
  ref.set_run_id(run);
  ref.set_stage(stage);
  ref.set_attempt(attempt);
  return ref;
}

v1::StageStatus Status(const v1::StageRef& ref, v1::StageState state) {
  v1::StageStatus status;
  *status.mutable_stage() = ref;
  status.set_state(state);
  return status;
}

// A scheduler with run 1 whose "build" runs on a1 (after one failed attempt).
Scheduler Busy() {
  Scheduler scheduler(SchedulerOptions{});
  scheduler.AgentConnected(Agent("a1"), kT0);
  EXPECT_EQ(scheduler.AddRun(TwoStages(), kT0), "1");
  scheduler.Schedule(kT0);
  EXPECT_TRUE(scheduler.ApplyStatus("a1", Status(Ref("1", "build", 1), v1::STAGE_FAILED), kT0).ok());
  scheduler.Schedule(kT0);
  EXPECT_TRUE(scheduler.ApplyStatus("a1", Status(Ref("1", "build", 2), v1::STAGE_RUNNING), kT0).ok());
  return scheduler;
}

// Saves everything `from` has, the way ControllerCore does, and restores it into `to`.
absl::Status CarryOver(const Scheduler& from, Scheduler& to, const std::vector<std::string>& runs,
                       const std::vector<std::string>& agents, absl::Time now) {
  std::vector<v1::RunRecord> run_records;
  std::vector<v1::AgentRecord> agent_records;
  for (const std::string& id : runs) run_records.push_back(*from.ExportRun(id));
  for (const std::string& name : agents) agent_records.push_back(*from.ExportAgent(name));
  return to.Restore(run_records, agent_records, now);
}

TEST(SchedulerRestore, RestoredSchedulerShowsTheSameRunsAndAgents) {
  Scheduler before = Busy();
  Scheduler after(SchedulerOptions{});
  ASSERT_TRUE(CarryOver(before, after, {"1"}, {"a1"}, kT0).ok());

  EXPECT_TRUE(MessageDifferencer::Equals(*after.GetRun("1"), *before.GetRun("1"))) << after.GetRun("1")->DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(*after.GetPipeline("1"), *before.GetPipeline("1")));
  EXPECT_EQ(after.RunVersion("1"), before.RunVersion("1"));
  EXPECT_TRUE(MessageDifferencer::Equals(*after.ExportRun("1"), *before.ExportRun("1")));
  EXPECT_TRUE(MessageDifferencer::Equals(*after.ExportAgent("a1"), *before.ExportAgent("a1")));
  // Retries left are kept: one failure was used of two.
  EXPECT_THAT(after.ExportRun("1")->fail_retries_left(), ElementsAre(1, 2));

  std::vector<v1::AgentInfo> agents = after.Agents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_FALSE(agents[0].connected());  // until it reconnects
  EXPECT_EQ(agents[0].busy(), 1);
}

// "run/index" of each stage record, checking it carries its run's current version.
std::vector<std::string> StageKeys(const Scheduler& scheduler, const std::vector<v1::StageRecord>& stages) {
  std::vector<std::string> keys;
  for (const v1::StageRecord& stage : stages) {
    EXPECT_EQ(stage.run_version(), scheduler.RunVersion(stage.run_id()));
    keys.push_back(absl::StrCat(stage.run_id(), "/", stage.index()));
  }
  return keys;
}

TEST(SchedulerRestore, ChangesNameTheRunsStagesAndAgentsToSave) {
  Scheduler scheduler(SchedulerOptions{});
  scheduler.AgentConnected(Agent("a1"), kT0);
  EXPECT_THAT(scheduler.TakeDirtyAgents(), ElementsAre("a1"));
  EXPECT_EQ(scheduler.AddRun(TwoStages(), kT0), "1");
  EXPECT_EQ(scheduler.AddRun(TwoStages(), kT0), "2");
  EXPECT_THAT(scheduler.TakeDirtyRuns(), ElementsAre("1", "2"));
  EXPECT_THAT(scheduler.TakeDirtyRuns(), IsEmpty());
  EXPECT_THAT(scheduler.TakeDirtyStages(), IsEmpty());  // the runs' records carry them

  scheduler.Schedule(kT0);  // run 1's build goes to a1 and run 1 starts; run 2 waits
  EXPECT_THAT(scheduler.TakeDirtyRuns(), ElementsAre("1"));
  EXPECT_THAT(StageKeys(scheduler, scheduler.TakeDirtyStages()), ElementsAre("2/0"));  // its wait message
  EXPECT_THAT(scheduler.TakeDirtyAgents(), ElementsAre("a1"));

  ASSERT_TRUE(scheduler.ApplyStatus("a1", Status(Ref("1", "build", 1), v1::STAGE_RUNNING), kT0).ok());
  EXPECT_THAT(scheduler.TakeDirtyRuns(), IsEmpty());
  EXPECT_THAT(StageKeys(scheduler, scheduler.TakeDirtyStages()), ElementsAre("1/0"));
  EXPECT_THAT(scheduler.TakeDirtyAgents(), IsEmpty());

  // A heartbeat that changes nothing persisted saves nothing.
  v1::Heartbeat heartbeat;
  *heartbeat.add_running() = Ref("1", "build", 1);
  scheduler.AgentHeartbeat("a1", heartbeat, kT0 + absl::Seconds(1));
  EXPECT_THAT(scheduler.TakeDirtyRuns(), IsEmpty());
  EXPECT_THAT(scheduler.TakeDirtyStages(), IsEmpty());
  EXPECT_THAT(scheduler.TakeDirtyAgents(), IsEmpty());

  // Success: the stage ends and its dependent is queued, the run goes on.
  ASSERT_TRUE(scheduler.ApplyStatus("a1", Status(Ref("1", "build", 1), v1::STAGE_SUCCEEDED), kT0).ok());
  EXPECT_THAT(scheduler.TakeDirtyRuns(), IsEmpty());
  EXPECT_THAT(StageKeys(scheduler, scheduler.TakeDirtyStages()), ElementsAre("1/0", "1/1"));
  EXPECT_THAT(scheduler.TakeDirtyAgents(), ElementsAre("a1"));  // its slot is free

  // A run that settles is saved whole, its stage changes with it.
  ASSERT_TRUE(scheduler.CancelRun("1", kT0).ok());
  EXPECT_THAT(scheduler.TakeDirtyRuns(), ElementsAre("1"));
  EXPECT_THAT(scheduler.TakeDirtyStages(), IsEmpty());
}

TEST(SchedulerRestore, StageRecordsFoldedIntoTheRunRecordRestoreTheSameState) {
  Scheduler before(SchedulerOptions{});
  before.AgentConnected(Agent("a1"), kT0);
  const std::string id = before.AddRun(TwoStages(), kT0);
  before.Schedule(kT0);
  (void)before.TakeDirtyRuns();  // the run started: saved whole
  v1::RunRecord saved = *before.ExportRun(id);
  ASSERT_TRUE(before.ApplyStatus("a1", Status(Ref(id, "build", 1), v1::STAGE_SUCCEEDED), kT0).ok());
  std::vector<v1::StageRecord> stages = before.TakeDirtyStages();
  ASSERT_EQ(stages.size(), 2u);
  for (const v1::StageRecord& stage : stages) {
    *saved.mutable_run()->mutable_stages(stage.index()) = stage.info();
    saved.set_lost_retries_left(stage.index(), stage.lost_retries_left());
    saved.set_fail_retries_left(stage.index(), stage.fail_retries_left());
    saved.set_version(stage.run_version());
  }
  EXPECT_TRUE(MessageDifferencer::Equals(saved, *before.ExportRun(id))) << saved.DebugString();
}

TEST(SchedulerRestore, AgentThatReconnectsWithinTheLeaseKeepsItsStage) {
  Scheduler before = Busy();
  Scheduler after(SchedulerOptions{});
  const absl::Time restart = kT0 + absl::Minutes(5);
  ASSERT_TRUE(CarryOver(before, after, {"1"}, {"a1"}, restart).ok());

  SchedulerEffects effects = after.AgentConnected(Agent("a1", {Ref("1", "build", 2)}), restart + absl::Seconds(10));
  EXPECT_THAT(effects.orders, IsEmpty());
  // Past the lease counted from the restart, but the agent is back.
  effects = after.ExpireLeases(restart + absl::Seconds(35));
  EXPECT_THAT(effects.ended, IsEmpty());
  EXPECT_TRUE(after.CheckHolder("a1", Ref("1", "build", 2)).ok());
  auto done = after.ApplyStatus("a1", Status(Ref("1", "build", 2), v1::STAGE_SUCCEEDED), restart + absl::Seconds(35));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(after.GetRun("1")->stages(0).state(), v1::STAGE_SUCCEEDED);
}

TEST(SchedulerRestore, AgentThatStaysAwayLosesItsStageOnceTheLeaseIsUp) {
  Scheduler before = Busy();
  SchedulerOptions options;
  options.lease_timeout = absl::Seconds(30);
  Scheduler after(options);
  const absl::Time restart = kT0 + absl::Minutes(5);
  ASSERT_TRUE(CarryOver(before, after, {"1"}, {"a1"}, restart).ok());

  // The lease counts from the restart, not from when the agent was last heard of.
  EXPECT_THAT(after.ExpireLeases(restart + absl::Seconds(29)).ended, IsEmpty());
  SchedulerEffects effects = after.ExpireLeases(restart + absl::Seconds(30));
  ASSERT_EQ(effects.ended.size(), 1u);
  EXPECT_EQ(effects.ended[0].state, v1::STAGE_LOST);
  EXPECT_EQ(effects.ended[0].ref.attempt(), 2);
  const v1::StageInfo build = after.GetRun("1")->stages(0);
  EXPECT_EQ(build.state(), v1::STAGE_QUEUED);
  EXPECT_THAT(build.message(), HasSubstr("lost"));
}

TEST(SchedulerRestore, NextRunIdFollowsTheHighestRestoredOne) {
  Scheduler before(SchedulerOptions{});
  for (int i = 0; i < 3; ++i) before.AddRun(TwoStages(), kT0);
  Scheduler after(SchedulerOptions{});
  ASSERT_TRUE(CarryOver(before, after, {"1", "3"}, {}, kT0).ok());
  EXPECT_EQ(after.AddRun(TwoStages(), kT0), "4");
}

TEST(SchedulerRestore, InconsistentRecordIsSkippedAndNamed) {
  Scheduler before = Busy();
  v1::RunRecord broken = *before.ExportRun("1");
  broken.mutable_run()->set_id("2");
  broken.mutable_run()->mutable_stages()->RemoveLast();
  Scheduler after(SchedulerOptions{});
  absl::Status st = after.Restore({*before.ExportRun("1"), broken}, {}, kT0);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("run \"2\" skipped"));
  EXPECT_TRUE(after.GetRun("1").ok());
  EXPECT_FALSE(after.GetRun("2").ok());
}

TEST(SchedulerRestore, LiveAttemptWhoseAgentRecordIsMissingIsLostOnceTheLeaseIsUp) {
  Scheduler before = Busy();
  SchedulerOptions options;
  options.lease_timeout = absl::Seconds(30);
  Scheduler after(options);
  absl::Status st = after.Restore({*before.ExportRun("1")}, {}, kT0);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("agent \"a1\" missing"));

  SchedulerEffects effects = after.ExpireLeases(kT0 + absl::Seconds(30));
  ASSERT_EQ(effects.ended.size(), 1u);
  EXPECT_EQ(effects.ended[0].ref.stage(), "build");
  EXPECT_EQ(after.GetRun("1")->stages(0).state(), v1::STAGE_QUEUED);
}

}  // namespace
}  // namespace dockyard
