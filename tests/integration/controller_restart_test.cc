// The controller survives a crash: an in-process controller on 127.0.0.1:0 is torn
// down mid-run and a new one started on the same data_dir. The test plays the agent
// over the real gRPC contract and checks that runs, stage states, logs and leases
// carry over, and that run ids are never reused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <functional>
#include <thread>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include "common/sha256.h"
#include "controller/server.h"
#include "tests/support/scripted_agent.h"
#include "tests/support/test_credentials.h"
#include "dockyard/v1/agent.grpc.pb.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

using ::dockyard::testing::ScriptedAgent;

class ControllerRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = fs::path(::testing::TempDir()) / ("controller-restart-" + std::to_string(::getpid()));
    fs::remove_all(data_dir_);
    StartController();
  }

  void TearDown() override {
    server_.reset();
    fs::remove_all(data_dir_);
  }

  void StartController(absl::Duration lease_timeout = absl::Seconds(30)) {
    ServerOptions options;
    options.controller.data_dir = data_dir_.string();
    options.controller.tick = absl::Milliseconds(50);
    options.controller.scheduler.lease_timeout = lease_timeout;
    auto server = ControllerServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    runs_ = v1::RunService::NewStub(
        testing::SecureChannel(server_->address(), testing::AdminCredentials(data_dir_.string())));
    agent_stubs_.clear();
  }

  // A session stub for agent `name`, enrolled on first use; its certificate
  // outlives controller restarts, as a real agent's does.
  v1::AgentService::Stub& Agent(const std::string& name) {
    if (!agent_credentials_.count(name)) {
      agent_credentials_[name] = testing::EnrolAgent(server_->address(), data_dir_.string(), name);
    }
    auto& stub = agent_stubs_[name];
    if (!stub) {
      stub = v1::AgentService::NewStub(testing::SecureChannel(server_->address(), agent_credentials_[name]));
    }
    return *stub;
  }

  // As close to SIGKILL as one process gets: the controller goes away with agent
  // streams open and nothing saved on the way out.
  void CrashController() { server_.reset(); }

  std::string Submit() {
    v1::SubmitRunRequest submit;
    submit.mutable_pipeline()->set_name("restart");
    for (const char* name : {"build", "test"}) {
      v1::Stage* stage = submit.mutable_pipeline()->add_stages();
      stage->set_name(name);
      stage->set_image("dockyard/busybox");
      stage->set_run("true");
      if (std::string(name) == "test") stage->add_needs("build");
    }
    grpc::ClientContext context;
    v1::SubmitRunResponse submitted;
    grpc::Status status = runs_->SubmitRun(&context, submit, &submitted);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return submitted.run_id();
  }

  v1::Run GetRun(const std::string& id) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(id);
    v1::Run run;
    grpc::Status status = runs_->GetRun(&context, request, &run);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return run;
  }

  v1::Run WaitFor(const std::string& id, const std::function<bool(const v1::Run&)>& done) {
    v1::Run run;
    for (int i = 0; i < 400; ++i) {
      run = GetRun(id);
      if (done(run)) return run;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "run never got there: " << run.DebugString();
    return run;
  }

  // The whole log of one attempt. With `follow`, returns only once the controller
  // says the attempt is over (bounded by a deadline).
  std::string ReadLog(const std::string& run, const std::string& stage, int attempt, bool follow = false) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ReadLogRequest request;
    request.set_run_id(run);
    request.set_stage(stage);
    request.set_attempt(attempt);
    request.set_follow(follow);
    auto reader = runs_->ReadLog(&context, request);
    std::string out;
    v1::ReadLogResponse response;
    while (reader->Read(&response)) out += response.data();
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  std::vector<v1::Artifact> Artifacts(const std::string& run_id) {
    grpc::ClientContext context;
    v1::ListArtifactsRequest request;
    request.set_run_id(run_id);
    v1::ListArtifactsResponse response;
    EXPECT_TRUE(runs_->ListArtifacts(&context, request, &response).ok());
    return {response.artifacts().begin(), response.artifacts().end()};
  }

  static const v1::StageInfo& Stage(const v1::Run& run, const std::string& name) {
    for (const v1::StageInfo& stage : run.stages()) {
      if (stage.name() == name) return stage;
    }
    return v1::StageInfo::default_instance();
  }

  fs::path data_dir_;
  std::unique_ptr<ControllerServer> server_;
  std::map<std::string, ClientSecurity> agent_credentials_;
  std::map<std::string, std::unique_ptr<v1::AgentService::Stub>> agent_stubs_;
  std::unique_ptr<v1::RunService::Stub> runs_;
};

TEST_F(ControllerRestart, RunContinuesAfterACrashWithItsStatesLogAndAgent) {
  const std::string run_id = Submit();
  v1::StageRef build;
  v1::Run before;
  std::string log_before;
  {
    ScriptedAgent agent(Agent("builder"), "builder");
    build = agent.NextAssignment();
    ASSERT_EQ(build.stage(), "build");
    agent.Report(build, v1::STAGE_RUNNING);
    EXPECT_EQ(agent.SendLog(build, 0, {"compiling\n", "linking\n"}), 2);
    before = WaitFor(run_id, [](const v1::Run& run) { return Stage(run, "build").state() == v1::STAGE_RUNNING; });
    log_before = ReadLog(run_id, "build", 0);
    EXPECT_THAT(log_before, HasSubstr("compiling\nlinking\n"));
    CrashController();
  }

  StartController();
  const v1::Run after = GetRun(run_id);
  EXPECT_TRUE(MessageDifferencer::Equals(after, before)) << "before:\n"
                                                         << before.DebugString() << "after:\n"
                                                         << after.DebugString();
  EXPECT_EQ(ReadLog(run_id, "build", 0), log_before);

  {
    // The agent kept running the stage and comes back within the lease.
    ScriptedAgent agent(Agent("builder"), "builder", {build});
    // It resends what it had no ack for, plus new output: chunk 1 is not stored twice.
    EXPECT_EQ(agent.SendLog(build, 1, {"linking\n", "done\n"}), 3);
    EXPECT_EQ(ReadLog(run_id, "build", 0), log_before + "done\n");
    agent.Report(build, v1::STAGE_SUCCEEDED);

    const v1::StageRef test = agent.NextAssignment();
    EXPECT_EQ(test.stage(), "test");
    agent.Report(test, v1::STAGE_RUNNING);
    agent.Report(test, v1::STAGE_SUCCEEDED);
  }
  const v1::Run finished = WaitFor(run_id, [](const v1::Run& run) { return run.state() == v1::RUN_SUCCEEDED; });
  EXPECT_EQ(Stage(finished, "build").attempt(), 1);
  EXPECT_EQ(Stage(finished, "build").state(), v1::STAGE_SUCCEEDED);

  EXPECT_EQ(run_id, "1");
  EXPECT_EQ(Submit(), "2");  // ids are not reused after a restart
}

TEST_F(ControllerRestart, AgentThatDoesNotComeBackLosesItsStageOnceTheLeaseIsUp) {
  const std::string run_id = Submit();
  {
    ScriptedAgent agent(Agent("gone"), "gone");
    const v1::StageRef build = agent.NextAssignment();
    agent.Report(build, v1::STAGE_RUNNING);
    EXPECT_EQ(agent.SendLog(build, 0, {"half way\n"}), 1);
    WaitFor(run_id, [](const v1::Run& run) { return Stage(run, "build").state() == v1::STAGE_RUNNING; });
    CrashController();
  }

  StartController(/*lease_timeout=*/absl::Seconds(1));
  ScriptedAgent other(Agent("other"), "other");
  // Only once the lease of "gone" is up does its stage move.
  const v1::StageRef again = other.NextAssignment();
  EXPECT_EQ(again.stage(), "build");
  EXPECT_EQ(again.attempt(), 2);
  const std::string first = ReadLog(run_id, "build", 1, /*follow=*/true);
  EXPECT_THAT(first, HasSubstr("half way\n"));
  EXPECT_THAT(first, HasSubstr("lost"));
}

TEST_F(ControllerRestart, LogsOfAttemptsThatEndedBeforeACrashReadAsFinished) {
  const std::string run_id = Submit();
  {
    ScriptedAgent agent(Agent("builder"), "builder");
    for (const char* name : {"build", "test"}) {
      const v1::StageRef ref = agent.NextAssignment();
      EXPECT_EQ(ref.stage(), name);
      agent.Report(ref, v1::STAGE_RUNNING);
      EXPECT_EQ(agent.SendLog(ref, 0, {std::string(name) + " output\n"}), 1);
      agent.Report(ref, v1::STAGE_SUCCEEDED);
    }
    WaitFor(run_id, [](const v1::Run& run) { return run.state() == v1::RUN_SUCCEEDED; });
    CrashController();
  }

  StartController();
  EXPECT_EQ(GetRun(run_id).state(), v1::RUN_SUCCEEDED);
  // Following the log of a finished attempt ends at once instead of waiting forever.
  EXPECT_THAT(ReadLog(run_id, "build", 1, /*follow=*/true), HasSubstr("build output\n"));
  EXPECT_THAT(ReadLog(run_id, "test", 0, /*follow=*/true), HasSubstr("test output\n"));
}

TEST_F(ControllerRestart, ArtifactsPublishedBeforeACrashAreStillListedAndDownloadable) {
  const std::string run_id = Submit();
  {
    ScriptedAgent agent(Agent("builder"), "builder");
    const v1::StageRef build = agent.NextAssignment();
    agent.Report(build, v1::STAGE_RUNNING);
    WaitFor(run_id, [](const v1::Run& run) { return Stage(run, "build").state() == v1::STAGE_RUNNING; });
    grpc::Status uploaded = testing::UploadArtifact(Agent("builder"), build, "/dist/app-1.0.whl", "wheel bytes");
    ASSERT_TRUE(uploaded.ok()) << uploaded.error_message();
    CrashController();
  }

  StartController();
  const std::vector<v1::Artifact> listed = Artifacts(run_id);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name(), "app-1.0.whl");
  EXPECT_EQ(listed[0].stage(), "build");
  EXPECT_EQ(listed[0].sha256(), Sha256Hex("wheel bytes"));

  grpc::ClientContext context;
  v1::DownloadArtifactRequest request;
  request.set_run_id(run_id);
  request.set_name("app-1.0.whl");
  auto reader = runs_->DownloadArtifact(&context, request);
  std::string data;
  v1::BlobChunk chunk;
  while (reader->Read(&chunk)) data += chunk.data();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(data, "wheel bytes");
}

}  // namespace
}  // namespace dockyard
