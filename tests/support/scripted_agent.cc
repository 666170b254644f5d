#include "tests/support/scripted_agent.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/sha256.h"

#include <google/protobuf/util/message_differencer.h>

namespace dockyard::testing {

using ::google::protobuf::util::MessageDifferencer;

ScriptedAgent::ScriptedAgent(v1::AgentService::Stub& stub, const std::string& name, std::vector<v1::StageRef> running,
                             int slots)
    : running_(std::move(running)) {
  // Never hang the test: a step that waits in vain fails at the deadline.
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  stream_ = stub.Session(&context_);
  v1::AgentMessage hello;
  hello.mutable_register_()->set_name(name);
  hello.mutable_register_()->set_slots(slots);
  {
    absl::MutexLock lock(&mu_);
    for (const v1::StageRef& ref : running_) *hello.mutable_register_()->add_running() = ref;
  }
  Write(hello);
  v1::ControllerMessage welcome = Next([](const v1::ControllerMessage& m) { return m.has_welcome(); });
  EXPECT_EQ(welcome.welcome().agent_id(), name);
  heartbeats_ = std::thread([this] {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(100))) {
      v1::AgentMessage beat;
      v1::Heartbeat* heartbeat = beat.mutable_heartbeat();
      for (const v1::StageRef& ref : running_) *heartbeat->add_running() = ref;
      stream_->Write(beat);
    }
  });
}

ScriptedAgent::~ScriptedAgent() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  heartbeats_.join();
  context_.TryCancel();
  stream_->Finish();
}

v1::ControllerMessage ScriptedAgent::Next(const std::function<bool(const v1::ControllerMessage&)>& wanted) {
  v1::ControllerMessage message;
  while (stream_->Read(&message)) {
    if (wanted(message)) return message;
  }
  ADD_FAILURE() << "session ended while waiting";
  return {};
}

v1::StageRef ScriptedAgent::NextAssignment() {
  v1::StageRef ref = Next([](const v1::ControllerMessage& m) { return m.has_assign(); }).assign().stage();
  absl::MutexLock lock(&mu_);
  running_.push_back(ref);
  return ref;
}

void ScriptedAgent::Report(const v1::StageRef& ref, v1::StageState state) {
  v1::AgentMessage message;
  *message.mutable_stage_status()->mutable_stage() = ref;
  message.mutable_stage_status()->set_state(state);
  Write(message);
  if (state != v1::STAGE_RUNNING) {
    {
      absl::MutexLock lock(&mu_);
      std::erase_if(running_, [&](const v1::StageRef& r) { return MessageDifferencer::Equals(r, ref); });
    }
    Next([&](const v1::ControllerMessage& m) {
      return m.has_settled() && MessageDifferencer::Equals(m.settled().stage(), ref);
    });
  }
}

int64_t ScriptedAgent::SendLog(const v1::StageRef& ref, int64_t first_seq, const std::vector<std::string>& chunks) {
  v1::AgentMessage message;
  *message.mutable_log()->mutable_stage() = ref;
  int64_t seq = first_seq;
  for (const std::string& data : chunks) {
    v1::LogChunk* chunk = message.mutable_log()->add_chunks();
    chunk->set_seq(seq++);
    chunk->set_stream(v1::LOG_STDOUT);
    chunk->set_data(data);
  }
  Write(message);
  v1::ControllerMessage answer = Next([](const v1::ControllerMessage& m) { return m.has_log_ack() || m.has_reject(); });
  return answer.has_reject() ? -1 : answer.log_ack().next_seq();
}

void ScriptedAgent::Write(const v1::AgentMessage& message) {
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(stream_->Write(message));
}

grpc::Status UploadArtifact(v1::AgentService::Stub& stub, const v1::StageRef& ref, const std::string& path,
                            const std::string& data) {
  grpc::ClientContext context;
  v1::UploadArtifactResponse response;
  auto writer = stub.UploadArtifact(&context, &response);
  v1::UploadArtifactRequest request;
  *request.mutable_header()->mutable_stage() = ref;
  request.mutable_header()->set_path(path);
  request.mutable_header()->set_size(static_cast<int64_t>(data.size()));
  request.mutable_header()->set_sha256(Sha256Hex(data));
  writer->Write(request);
  request.set_data(data);
  writer->Write(request);
  writer->WritesDone();
  return writer->Finish();
}

}  // namespace dockyard::testing
