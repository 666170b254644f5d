// Test support: one agent session over the real gRPC stream, driven step by step
// by the test; it heartbeats in the background like a real agent, so short leases
// stay held. For in-process controller tests that play the agent themselves.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard::testing {

class ScriptedAgent {
 public:
  // Registers as `name` with `slots`, reporting `running` as still running, and
  // waits for Welcome.
  ScriptedAgent(v1::AgentService::Stub& stub, const std::string& name, std::vector<v1::StageRef> running = {},
                int slots = 1);
  ~ScriptedAgent();

  // The next message that matches, skipping the others (acks, settlements, ...).
  v1::ControllerMessage Next(const std::function<bool(const v1::ControllerMessage&)>& wanted);
  v1::StageRef NextAssignment();
  // Reports a state; a final one waits for the controller's StageSettled.
  void Report(const v1::StageRef& ref, v1::StageState state);
  // Sends chunks first_seq, first_seq+1, ... and returns the acknowledged next seq
  // (-1 when the controller rejects the batch).
  int64_t SendLog(const v1::StageRef& ref, int64_t first_seq, const std::vector<std::string>& chunks);

 private:
  // One writer at a time on a stream: the test's steps and the heartbeats share it.
  void Write(const v1::AgentMessage& message);

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream_;
  absl::Mutex mu_;
  std::vector<v1::StageRef> running_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread heartbeats_;
};

// Uploads `data` whole as the artifact `path` of attempt `ref`, as an agent would
// (header, then the data); returns how the call ended.
grpc::Status UploadArtifact(v1::AgentService::Stub& stub, const v1::StageRef& ref, const std::string& path,
                            const std::string& data);

}  // namespace dockyard::testing
