// A Dockyard agent: keeps a session to the controller (reconnecting with back-off),
// runs each assigned stage attempt on its own thread through a StageExecutor, and
// delivers logs and statuses so that none is lost across reconnects.
#pragma once

#include <map>
#include <optional>
#include <tuple>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/artifact_uploader.h"
#include "agent/controller_session.h"
#include "agent/docker_client.h"
#include "agent/log_pump.h"
#include "agent/source_cache.h"
#include "agent/stage_executor.h"

namespace dockyard {

struct AgentOptions {
  std::string name;
  std::vector<std::string> labels;
  int slots = 1;
  std::string work_dir;  // source cache and scratch space
  std::string version;
  absl::Duration flush_interval = absl::Milliseconds(100);
  absl::Duration reconnect_min = absl::Milliseconds(200);
  absl::Duration reconnect_max = absl::Seconds(5);
};

class Agent {
 public:
  // `channel` leads to the controller; `docker` must outlive the agent.
  Agent(AgentOptions options, std::shared_ptr<grpc::Channel> channel, DockerClient* docker);
  ~Agent();

  // Removes containers a previous life of this agent left behind, then connects
  // and starts taking stages.
  void Start();
  // Stops every running stage (their containers are removed), reports them, and
  // disconnects. Blocks until done.
  void Shutdown();

 private:
  struct Running {
    std::unique_ptr<LogPump> pump;
    std::shared_ptr<StageExecutor> executor;  // shared with cancel threads
    std::thread thread;
    std::optional<v1::StageStatus> final_status;  // set once over, until acknowledged
  };
  using Key = std::tuple<std::string, std::string, int>;

  void ConnectLoop();
  void FlushLoop();
  void OnMessage(const v1::ControllerMessage& message);
  void OnAssign(const v1::StageAssignment& assignment);
  void OnCancel(const v1::CancelStage& cancel);
  void RunStage(Key key);
  void Send(v1::AgentMessage message);
  void SendLog(v1::LogBatch batch);
  v1::RegisterAgent Registration();
  void RemoveLeftoverContainers();
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AgentOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  DockerClient* docker_;
  SourceCache sources_;
  ArtifactUploader artifacts_;

  // Lock order: mu_ before a LogPump's mutex before session_mu_. Pumps send while
  // holding their own mutex, so the send path takes only session_mu_.
  absl::Mutex session_mu_;
  std::shared_ptr<ControllerSession> session_ ABSL_GUARDED_BY(session_mu_);
  bool connected_ ABSL_GUARDED_BY(session_mu_) = false;  // Welcome received on the current session

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<Key, Running> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_threads_ ABSL_GUARDED_BY(mu_);

  std::thread connect_thread_;
  std::thread flush_thread_;
};

}  // namespace dockyard
