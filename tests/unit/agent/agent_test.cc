// The whole agent (session, slots, spool, executor, log pump) against a fake engine
// and an in-process controller on TLS: what a run looks like from the controller when
// the engine behaves, errs, or the run is cancelled or times out — deterministic,
// without Docker.
#include "agent/agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controller/server.h"
#include "tests/fakes/fake_docker_client.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_credentials.h"

namespace dockyard {
namespace {

using ::dockyard::testing::FakeDockerClient;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class AgentOnFakeEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshDir();
    ServerOptions options;
    options.controller.data_dir = dir_ + "/controller";
    options.controller.tick = absl::Milliseconds(50);
    auto server = ControllerServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    docker_.AddImage("dockyard/busybox", "sha256:busybox");
    AgentOptions agent;
    agent.name = "fake-agent";
    agent.slots = 1;
    agent.work_dir = dir_ + "/agent";
    agent_ = std::make_unique<Agent>(
        agent,
        testing::SecureChannel(server_->address(),
                               testing::EnrolAgent(server_->address(), options.controller.data_dir, agent.name)),
        &docker_);
    agent_->Start();
  }

  void TearDown() override {
    agent_->Shutdown();
    agent_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Submits a one-stage run of `script` and returns its id.
  std::string Submit(const std::string& script, int64_t timeout_ms = 0) {
    v1::Pipeline pipeline;
    pipeline.set_name("fake");
    v1::Stage* stage = pipeline.add_stages();
    stage->set_name("build");
    stage->set_image("dockyard/busybox");
    stage->set_run(script);
    stage->set_timeout_ms(timeout_ms);
    auto submitted = server_->core().SubmitRun(pipeline, "");
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    return submitted.ok() ? submitted->run_id : "";
  }

  v1::Run AwaitState(const std::string& run_id, std::initializer_list<v1::RunState> states) {
    for (int i = 0; i < 1000; ++i) {
      auto run = server_->core().GetRun(run_id);
      if (run.ok() && std::find(states.begin(), states.end(), run->state()) != states.end()) return *run;
      absl::SleepFor(absl::Milliseconds(10));
    }
    ADD_FAILURE() << "run " << run_id << " never reached the state";
    return {};
  }

  v1::Run AwaitEnd(const std::string& run_id) {
    return AwaitState(run_id, {v1::RUN_SUCCEEDED, v1::RUN_FAILED, v1::RUN_CANCELLED});
  }

  // The controller's copy of the stage's log (its last attempt).
  std::string LogOf(const std::string& run_id) {
    auto ref = server_->core().ResolveAttempt(run_id, "build", 0);
    if (!ref.ok()) return "";
    auto slice = server_->core().logs().Read(*ref, 0, 1 << 20);
    return slice.ok() ? slice->data : "";
  }

  // Containers go once the stage is reported; give the agent's thread a moment.
  bool EngineEmpties() {
    for (int i = 0; i < 200 && !docker_.LiveContainers().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
    return docker_.LiveContainers().empty();
  }

  std::string dir_;
  FakeDockerClient docker_;
  std::unique_ptr<ControllerServer> server_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentOnFakeEngine, ASubmittedRunSucceedsWithTheContainersOutputInTheControllersLog) {
  docker_.SetProgram("make", {.output = {{OutputStream::kStdout, "compiled\n"}, {OutputStream::kStderr, "a warning\n"}}});
  const std::string run = Submit("make");
  v1::Run done = AwaitEnd(run);
  EXPECT_EQ(done.state(), v1::RUN_SUCCEEDED);
  ASSERT_EQ(done.stages_size(), 1);
  EXPECT_EQ(done.stages(0).agent(), "fake-agent");
  EXPECT_THAT(LogOf(run), HasSubstr("compiled\n"));
  EXPECT_THAT(LogOf(run), HasSubstr("a warning\n"));
  EXPECT_TRUE(EngineEmpties());
}

TEST_F(AgentOnFakeEngine, AnEngineErrorFailsTheStageNamingItAndTheAgentTakesTheNextRun) {
  docker_.FailNext("CreateContainer", absl::UnavailableError("the engine is restarting"));
  const std::string failed = Submit("make");
  v1::Run done = AwaitEnd(failed);
  EXPECT_EQ(done.state(), v1::RUN_FAILED);
  ASSERT_EQ(done.stages_size(), 1);
  EXPECT_THAT(done.stages(0).message(), HasSubstr("the engine is restarting"));
  // The slot is free again and the next run goes through.
  EXPECT_EQ(AwaitEnd(Submit("make")).state(), v1::RUN_SUCCEEDED);
  EXPECT_TRUE(EngineEmpties());
}

TEST_F(AgentOnFakeEngine, AFailingCommandFailsTheRunWithItsExitCode) {
  docker_.SetProgram("false", {.exit_code = 2});
  v1::Run done = AwaitEnd(Submit("false"));
  EXPECT_EQ(done.state(), v1::RUN_FAILED);
  EXPECT_EQ(done.stages(0).exit_code(), 2);
  EXPECT_TRUE(EngineEmpties());
}

TEST_F(AgentOnFakeEngine, CancellingARunKillsItsContainer) {
  docker_.SetProgram("serve", {.runs_until_killed = true});
  const std::string run = Submit("serve");
  // Running: the agent started the container and said so.
  for (int i = 0; i < 500; ++i) {
    auto now = server_->core().GetRun(run);
    if (now.ok() && now->stages(0).state() == v1::STAGE_RUNNING) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(docker_.LiveContainers().size(), 1u);
  const std::string container = *docker_.LiveContainers().begin();
  Caller admin;
  admin.kind = Caller::Kind::kToken;
  admin.role = v1::ROLE_ADMIN;
  ASSERT_TRUE(server_->core().CancelRun(run, admin).ok());
  EXPECT_EQ(AwaitEnd(run).state(), v1::RUN_CANCELLED);
  // The controller settles the run at once; the agent's kill follows the order.
  for (int i = 0; i < 200 && !docker_.Killed(container); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(docker_.Killed(container));
  EXPECT_TRUE(EngineEmpties());
}

TEST_F(AgentOnFakeEngine, AStageOverItsTimeoutIsKilledAndTimesOut) {
  docker_.SetProgram("hang", {.runs_until_killed = true});
  v1::Run done = AwaitEnd(Submit("hang", /*timeout_ms=*/200));
  EXPECT_EQ(done.state(), v1::RUN_FAILED);
  EXPECT_EQ(done.stages(0).state(), v1::STAGE_TIMED_OUT);
  EXPECT_THAT(docker_.Calls(), Contains("KillContainer"));
  EXPECT_TRUE(EngineEmpties());
}

}  // namespace
}  // namespace dockyard
