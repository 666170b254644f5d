// Per-attempt authorisation on the agent service, against an in-process controller
// on 127.0.0.1:0 (TLS): two enrolled agents, where "beta" tries to act for the
// attempt leased to "alpha" — report its status, send its log, publish its
// artifact, fetch a source it was never given. Each is refused and the run's data
// stays as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "common/sha256.h"
#include "controller/server.h"
#include "dockyard/v1/agent.grpc.pb.h"
#include "dockyard/v1/run.grpc.pb.h"
#include "tests/support/scripted_agent.h"
#include "tests/support/test_credentials.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

class AgentAuthorisation : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = fs::path(::testing::TempDir()) / ("agent-authorisation-" + std::to_string(::getpid()));
    fs::remove_all(data_dir_);
    ServerOptions options;
    options.controller.data_dir = data_dir_.string();
    auto server = ControllerServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    const std::string address = server_->address();
    runs_ = v1::RunService::NewStub(testing::SecureChannel(address, testing::AdminCredentials(data_dir_.string())));
    alpha_stub_ = v1::AgentService::NewStub(
        testing::SecureChannel(address, testing::EnrolAgent(address, data_dir_.string(), "alpha")));
    beta_stub_ = v1::AgentService::NewStub(
        testing::SecureChannel(address, testing::EnrolAgent(address, data_dir_.string(), "beta")));

    alpha_ = std::make_unique<testing::ScriptedAgent>(*alpha_stub_, "alpha");
    source_ = UploadSource("the source tree");
    v1::SubmitRunRequest submit;
    submit.mutable_pipeline()->set_name("guarded");
    submit.mutable_pipeline()->set_source_digest(source_);
    v1::Stage* stage = submit.mutable_pipeline()->add_stages();
    stage->set_name("build");
    stage->set_image("dockyard/busybox");
    stage->set_run("true");
    grpc::ClientContext context;
    v1::SubmitRunResponse submitted;
    ASSERT_TRUE(runs_->SubmitRun(&context, submit, &submitted).ok());
    run_id_ = submitted.run_id();
    ref_ = alpha_->NextAssignment();
    alpha_->Report(ref_, v1::STAGE_RUNNING);
    ASSERT_EQ(alpha_->SendLog(ref_, 0, {"alpha's line\n"}), 1);
    // Beta is connected too, with nothing to do.
    beta_ = std::make_unique<testing::ScriptedAgent>(*beta_stub_, "beta");
  }

  void TearDown() override {
    beta_.reset();
    alpha_.reset();
    server_.reset();
    fs::remove_all(data_dir_);
  }

  std::string UploadSource(const std::string& data) {
    grpc::ClientContext context;
    v1::UploadSourceResponse response;
    auto writer = runs_->UploadSource(&context, &response);
    v1::UploadSourceRequest request;
    request.mutable_header()->set_sha256(Sha256Hex(data));
    request.mutable_header()->set_size(static_cast<int64_t>(data.size()));
    writer->Write(request);
    request.set_data(data);
    writer->Write(request);
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    return Sha256Hex(data);
  }

  v1::StageInfo Stage() {
    auto run = server_->core().GetRun(run_id_);
    EXPECT_TRUE(run.ok());
    return run->stages(0);
  }

  std::string Log() {
    auto slice = server_->core().logs().Read(ref_, 0, 1 << 20);
    EXPECT_TRUE(slice.ok());
    return slice.ok() ? slice->data : "";
  }

  grpc::Status Fetch(v1::AgentService::Stub& stub, std::string* out) {
    grpc::ClientContext context;
    v1::FetchSourceRequest request;
    request.set_digest(source_);
    auto reader = stub.FetchSource(&context, request);
    v1::BlobChunk chunk;
    while (reader->Read(&chunk)) *out += chunk.data();
    return reader->Finish();
  }

  fs::path data_dir_;
  std::unique_ptr<ControllerServer> server_;
  std::unique_ptr<v1::RunService::Stub> runs_;
  std::unique_ptr<v1::AgentService::Stub> alpha_stub_;
  std::unique_ptr<v1::AgentService::Stub> beta_stub_;
  std::unique_ptr<testing::ScriptedAgent> alpha_;
  std::unique_ptr<testing::ScriptedAgent> beta_;
  std::string source_;
  std::string run_id_;
  v1::StageRef ref_;
};

TEST_F(AgentAuthorisation, StatusForAnotherAgentsAttemptIsRejectedAndChangesNothing) {
  beta_->Report(ref_, v1::STAGE_SUCCEEDED);  // answered (settled) but not applied
  EXPECT_EQ(Stage().state(), v1::STAGE_RUNNING);
  EXPECT_EQ(Stage().agent(), "alpha");
  EXPECT_EQ(Stage().attempt(), 1);
  // The holder still reports normally.
  alpha_->Report(ref_, v1::STAGE_SUCCEEDED);
  EXPECT_EQ(Stage().state(), v1::STAGE_SUCCEEDED);
}

TEST_F(AgentAuthorisation, LogChunksForAnotherAgentsAttemptAreRejectedAndNotStored) {
  EXPECT_EQ(beta_->SendLog(ref_, 1, {"forged line\n"}), -1);
  EXPECT_THAT(Log(), Not(HasSubstr("forged")));
  EXPECT_EQ(alpha_->SendLog(ref_, 1, {"alpha again\n"}), 2);
  EXPECT_THAT(Log(), EndsWith("\nalpha's line\nalpha again\n"));
}

TEST_F(AgentAuthorisation, ArtifactForAnotherAgentsAttemptIsRefusedAndNotListed) {
  const std::string data = "a forged wheel";
  grpc::Status refused = testing::UploadArtifact(*beta_stub_, ref_, "/dist/app.whl", data);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("leased to another agent"));
  EXPECT_TRUE(server_->core().Artifacts(run_id_).empty());
  EXPECT_FALSE(server_->core().blobs().Contains(Sha256Hex(data)));
}

TEST_F(AgentAuthorisation, SourceIsServedOnlyToAnAgentThatHoldsOneOfItsRunsStages) {
  std::string got;
  grpc::Status refused = Fetch(*beta_stub_, &got);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
  EXPECT_TRUE(got.empty());
  grpc::Status served = Fetch(*alpha_stub_, &got);
  EXPECT_TRUE(served.ok()) << served.error_message();
  EXPECT_EQ(got, "the source tree");
}

TEST_F(AgentAuthorisation, CallWithoutACertificateIsRefusedSayingHowToEnrol) {
  auto anonymous = v1::AgentService::NewStub(
      testing::SecureChannel(server_->address(), ClientSecurity{.ca_pem = testing::AdminCredentials(data_dir_.string()).ca_pem}));
  std::string got;
  grpc::Status refused = Fetch(*anonymous, &got);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.error_message(), HasSubstr("enrol the agent first"));
}

}  // namespace
}  // namespace dockyard
