// The stage executor against a fake engine: what it reports and what it leaves
// behind when the command succeeds, fails, times out, is cancelled, or the engine
// errs at each step — deterministic, without Docker.
#include "agent/stage_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/fakes/fake_docker_client.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

using ::dockyard::testing::FakeDockerClient;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

class StageExecutorOnFakeEngine : public ::testing::Test {
 protected:
  StageExecutorOnFakeEngine()
      : dir_(testing::FreshDir()),
        sources_(dir_ + "/sources", nullptr),
        artifacts_(&docker_, nullptr),
        caches_(&docker_, nullptr, dir_, 0),
        inputs_(nullptr, dir_ + "/inputs"),
        image_cache_(&docker_, dir_ + "/images", "fake-agent", 0),
        images_(&docker_, &sources_, &image_cache_, dir_, "fake-agent", false),
        pulls_(&docker_, dir_ + "/registry-auth.json", "fake-agent"),
        pump_(Ref(), [this](v1::LogBatch batch) {
          absl::MutexLock lock(&mu_);
          for (const v1::LogChunk& chunk : batch.chunks()) log_ += chunk.data();
        }) {
    docker_.AddImage("dockyard/busybox", "sha256:busybox");
  }

  static v1::StageRef Ref() {
    v1::StageRef ref;
    ref.set_run_id("7");
    ref.set_stage("build");
    ref.set_attempt(1);
    return ref;
  }

  StageExecutor Executor(const std::string& run, int64_t timeout_ms = 0, ContainerLogPolicy container_log = {}) {
    v1::StageAssignment assignment;
    *assignment.mutable_stage() = Ref();
    assignment.mutable_spec()->set_name("build");
    assignment.mutable_spec()->set_image("dockyard/busybox");
    assignment.mutable_spec()->set_run(run);
    assignment.mutable_spec()->set_timeout_ms(timeout_ms);
    ExecutorDeps deps{&docker_, &sources_, &artifacts_, &caches_, &inputs_, &images_, &pulls_, &chores_, "fake-agent", dir_,
                      SandboxPolicy{}, 16 << 20, container_log};
    return StageExecutor(assignment, deps, &pump_);
  }

  std::string Log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }

  FakeDockerClient docker_;
  std::string dir_;
  SourceCache sources_;
  ArtifactUploader artifacts_;
  CacheVolumes caches_;
  InputArtifacts inputs_;
  ImageCache image_cache_;
  ImageBuilder images_;
  ImagePuller pulls_;
  ChoreTimer chores_;
  absl::Mutex mu_;
  std::string log_ ABSL_GUARDED_BY(mu_);
  LogPump pump_;
};

TEST_F(StageExecutorOnFakeEngine, ASucceedingCommandReportsSucceededLogsItsOutputAndRemovesItsContainer) {
  docker_.SetProgram("make", {.output = {{OutputStream::kStdout, "built\n"}, {OutputStream::kStderr, "warned\n"}}});
  bool running = false;
  v1::StageStatus status = Executor("make").Run([&] { running = true; });
  EXPECT_EQ(status.state(), v1::STAGE_SUCCEEDED) << status.message();
  EXPECT_EQ(status.exit_code(), 0);
  EXPECT_TRUE(running);
  EXPECT_EQ(status.image_id(), "sha256:busybox");
  EXPECT_THAT(Log(), HasSubstr("built\n"));
  EXPECT_THAT(Log(), HasSubstr("warned\n"));
  EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
  // Sandboxed as promised: no network, every capability dropped but a few, no new privileges.
  ASSERT_EQ(docker_.Created().size(), 1u);
  EXPECT_EQ(docker_.Created()[0].network_mode, "none");
  EXPECT_TRUE(docker_.Created()[0].no_new_privileges);
  EXPECT_THAT(docker_.Created()[0].env, Contains("DOCKYARD_STAGE=build"));
}

// Every engine call is paid by every stage: a plain stage asks no more than `docker run --rm` does.
TEST_F(StageExecutorOnFakeEngine, APlainStageLooksItsImageUpOnceAndMakesOnlyTheCallsOfADockerRun) {
  ASSERT_EQ(Executor("true").Run([] {}).state(), v1::STAGE_SUCCEEDED);
  EXPECT_THAT(docker_.Calls(), ElementsAre("ImageId", "CreateContainer", "AttachOutput", "StartContainer", "FollowLogs",
                                           "WaitContainer", "RemoveContainer"));
}

TEST_F(StageExecutorOnFakeEngine, TheEngineLogKeepsTwiceTheReplaySizeAndEverythingWhenThereIsNoLimit) {
  ASSERT_EQ(Executor("true", 0, {.driver = "local", .replay_bytes = 1000}).Run([] {}).state(), v1::STAGE_SUCCEEDED);
  ASSERT_EQ(Executor("true", 0, {.driver = "local", .replay_bytes = 0}).Run([] {}).state(), v1::STAGE_SUCCEEDED);
  ASSERT_EQ(Executor("true", 0, {.driver = "", .replay_bytes = 1000}).Run([] {}).state(), v1::STAGE_SUCCEEDED);
  const std::vector<ContainerSpec> created = docker_.Created();
  ASSERT_EQ(created.size(), 3u);
  EXPECT_EQ(created[0].log_driver, "local");
  EXPECT_THAT(created[0].log_options, ElementsAre(Pair("compress", "false"), Pair("max-file", "2"),
                                                  Pair("max-size", "1000")));
  // The local driver cannot keep an unlimited log; json-file can.
  EXPECT_EQ(created[1].log_driver, "json-file");
  EXPECT_THAT(created[1].log_options, IsEmpty());
  // The engine's own default, as its operator configured it.
  EXPECT_EQ(created[2].log_driver, "");
  EXPECT_THAT(created[2].log_options, IsEmpty());
}

TEST_F(StageExecutorOnFakeEngine, AFailingCommandReportsItsExitCode) {
  docker_.SetProgram("false", {.exit_code = 3});
  v1::StageStatus status = Executor("false").Run([] {});
  EXPECT_EQ(status.state(), v1::STAGE_FAILED);
  EXPECT_EQ(status.exit_code(), 3);
  EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
}

TEST_F(StageExecutorOnFakeEngine, ATimeoutKillsTheContainerAndReportsTimedOut) {
  docker_.SetProgram("sleep forever", {.runs_until_killed = true});
  const absl::Time start = absl::Now();
  v1::StageStatus status = Executor("sleep forever", /*timeout_ms=*/200).Run([] {});
  EXPECT_EQ(status.state(), v1::STAGE_TIMED_OUT);
  EXPECT_THAT(status.message(), HasSubstr("timed out after 200ms"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_THAT(docker_.Calls(), Contains("KillContainer"));
  EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
}

TEST_F(StageExecutorOnFakeEngine, ACancelKillsTheRunningContainerAndReportsCancelled) {
  docker_.SetProgram("sleep forever", {.runs_until_killed = true});
  StageExecutor executor = Executor("sleep forever");
  absl::Notification running;
  std::thread canceller([&] {
    running.WaitForNotification();
    executor.Cancel(v1::STAGE_CANCELLED, "cancelled by the user");
  });
  v1::StageStatus status = executor.Run([&] { running.Notify(); });
  canceller.join();
  EXPECT_EQ(status.state(), v1::STAGE_CANCELLED);
  EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
}

TEST_F(StageExecutorOnFakeEngine, ACancelBeforeStartNeverStartsTheContainer) {
  StageExecutor executor = Executor("make");
  executor.Cancel(v1::STAGE_CANCELLED, "cancelled by the user");
  v1::StageStatus status = executor.Run([] { ADD_FAILURE() << "it ran"; });
  EXPECT_EQ(status.state(), v1::STAGE_CANCELLED);
  EXPECT_THAT(docker_.Calls(), ::testing::Not(Contains("StartContainer")));
  EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
}

TEST_F(StageExecutorOnFakeEngine, EngineErrorsAtEachStepFailTheStageSayingWhatFailedAndLeaveNoContainer) {
  struct Case {
    const char* method;
    const char* says;
  };
  for (const Case& c : {Case{"CreateContainer", "engine refused to create"},
                        Case{"ImageId", "engine refused"},
                        Case{"StartContainer", "cannot start the container"},
                        Case{"WaitContainer", "lost track of the container"},
                        Case{"FollowLogs", "log stream broke"}}) {
    SCOPED_TRACE(c.method);
    docker_.FailNext(c.method, absl::InternalError("engine refused to create"));
    StageExecutor executor = Executor("make");
    v1::StageStatus status = executor.Run([] {});
    EXPECT_EQ(status.state(), v1::STAGE_FAILED);
    EXPECT_THAT(status.message(), HasSubstr(c.says));
    EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
  }
}

TEST_F(StageExecutorOnFakeEngine, AnAbsentImageWithPullNeverFailsBeforeAnyContainerExists) {
  StageExecutor executor = [&] {
    v1::StageAssignment assignment;
    *assignment.mutable_stage() = Ref();
    assignment.mutable_spec()->set_image("team/app:1");
    assignment.mutable_spec()->set_pull(v1::PULL_NEVER);
    assignment.mutable_spec()->set_run("make");
    return StageExecutor(assignment,
                         ExecutorDeps{&docker_, &sources_, &artifacts_, &caches_, &inputs_, &images_, &pulls_,
                                      &chores_, "fake-agent", dir_, SandboxPolicy{}},
                         &pump_);
  }();
  v1::StageStatus status = executor.Run([] {});
  EXPECT_EQ(status.state(), v1::STAGE_FAILED);
  EXPECT_THAT(status.message(), HasSubstr("image team/app:1 is not on agent fake-agent and the stage says pull: never"));
  EXPECT_THAT(docker_.Calls(), ::testing::Not(Contains("CreateContainer")));
}

TEST_F(StageExecutorOnFakeEngine, AdoptingARunningContainerFollowsItToItsEnd) {
  docker_.SetProgram("sleep forever", {.output = {{OutputStream::kStdout, "still here\n"}}, .runs_until_killed = true});
  ContainerSpec spec;
  spec.image = "dockyard/busybox";
  spec.cmd = {"sh", "-e", "-c", "sleep forever"};
  auto id = docker_.CreateContainer(spec);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  StageExecutor executor = Executor("sleep forever");
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(100));
    (void)docker_.KillContainer(*id);
  });
  v1::StageStatus status = executor.Adopt(*id);
  stopper.join();
  EXPECT_EQ(status.state(), v1::STAGE_FAILED);
  EXPECT_EQ(status.exit_code(), 137);
  EXPECT_THAT(Log(), HasSubstr("the agent restarted and took this container over again"));
  EXPECT_THAT(Log(), HasSubstr("still here\n"));
  EXPECT_THAT(docker_.LiveContainers(), IsEmpty());
}

}  // namespace
}  // namespace dockyard
