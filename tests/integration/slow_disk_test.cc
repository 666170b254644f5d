// A controller whose disk stalls keeps its agents' sessions alive: the state store's
// saves are made to take seconds, and heartbeats are still answered at once, while
// an assignment waits until the run it belongs to is saved (decide, persist, send).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/server.h"
#include "tests/support/test_credentials.h"
#include "dockyard/v1/agent.grpc.pb.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kSaveStall = absl::Seconds(3);

TEST(SlowDisk, HeartbeatsAreAnsweredAtOnceWhileTheStateStoreStallsAndOrdersWaitForTheirSave) {
  const fs::path data_dir = fs::path(::testing::TempDir()) / ("slow-disk-" + std::to_string(::getpid()));
  fs::remove_all(data_dir);
  std::atomic<bool> slow{false};
  ServerOptions options;
  options.controller.data_dir = data_dir.string();
  options.controller.tick = absl::Milliseconds(50);
  options.controller.wrap_save = [&slow](StatePersister::Save save) -> StatePersister::Save {
    return [&slow, save](const StateChanges& changes) {
      if (slow) absl::SleepFor(kSaveStall);  // a disk that stalls (fsync behind a busy device)
      return save(changes);
    };
  };
  auto server = ControllerServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto runs = v1::RunService::NewStub(
      testing::SecureChannel((*server)->address(), testing::AdminCredentials(data_dir.string())));
  auto agent = v1::AgentService::NewStub(testing::SecureChannel(
      (*server)->address(), testing::EnrolAgent((*server)->address(), data_dir.string(), "builder")));

  grpc::ClientContext session_context;
  session_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto session = agent->Session(&session_context);
  v1::AgentMessage hello;
  hello.mutable_register_()->set_name("builder");
  hello.mutable_register_()->set_slots(1);
  ASSERT_TRUE(session->Write(hello));
  v1::ControllerMessage message;
  ASSERT_TRUE(session->Read(&message));
  ASSERT_TRUE(message.has_welcome());

  // From here every save takes seconds. A run is submitted (its answer waits for
  // the save) while the agent heartbeats every 100 ms and times each answer.
  slow = true;
  const absl::Time submitted_at = absl::Now();
  std::thread submit([&] {
    v1::SubmitRunRequest request;
    request.mutable_pipeline()->set_name("slow");
    v1::Stage* stage = request.mutable_pipeline()->add_stages();
    stage->set_name("build");
    stage->set_image("dockyard/busybox");
    stage->set_run("true");
    grpc::ClientContext context;
    v1::SubmitRunResponse response;
    grpc::Status status = runs->SubmitRun(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_GE(absl::Now() - submitted_at, kSaveStall) << "the run id was promised before the run was saved";
  });

  absl::Mutex mu;
  std::vector<absl::Time> sent;  // when each heartbeat left
  std::thread beats([&] {
    for (int i = 0; i < 30; ++i) {
      v1::AgentMessage beat;
      beat.mutable_heartbeat();
      {
        absl::MutexLock lock(&mu);
        sent.push_back(absl::Now());
      }
      if (!session->Write(beat)) return;
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  absl::Duration slowest_ack;
  int acks = 0;
  absl::Time assigned_at;
  while ((acks < 30 || assigned_at == absl::Time()) && session->Read(&message)) {
    if (message.has_heartbeat_ack()) {
      absl::MutexLock lock(&mu);
      slowest_ack = std::max(slowest_ack, absl::Now() - sent.at(acks++));
    } else if (message.has_assign()) {
      assigned_at = absl::Now();
    }
  }
  beats.join();
  submit.join();
  EXPECT_EQ(acks, 30);
  // Far below the stall: no heartbeat waited for the disk.
  EXPECT_LT(slowest_ack, absl::Milliseconds(500)) << "a heartbeat waited for the state store";
  // The assignment went out only once its run was saved.
  EXPECT_GE(assigned_at - submitted_at, kSaveStall);
  session_context.TryCancel();
  (void)session->Finish();
  server->reset();
  fs::remove_all(data_dir);
}

}  // namespace
}  // namespace dockyard
