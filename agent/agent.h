// A Dockyard agent: keeps a session to the controller (reconnecting with back-off,
// heartbeating its lease), runs each assigned stage attempt on its own thread
// through a StageExecutor, and spools every attempt to disk so that logs and
// statuses survive reconnects and restarts: a restarted agent re-adopts its
// still-running containers and resumes each log where the controller's copy ends.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/artifact_uploader.h"
#include "agent/cache_volumes.h"
#include "agent/controller_session.h"
#include "agent/chore_timer.h"
#include "agent/image_builder.h"
#include "agent/image_cache.h"
#include "agent/image_puller.h"
#include "agent/input_artifacts.h"
#include "agent/docker_client.h"
#include "agent/log_pump.h"
#include "agent/source_cache.h"
#include "agent/stage_executor.h"

namespace dockyard {

struct AgentOptions {
  std::string name;
  std::vector<std::string> labels;
  int slots = 1;
  std::string work_dir;  // source cache, spool and scratch space
  std::string version;
  // How long a line may wait in the agent before it is sent (log latency); a full
  // batch goes at once.
  absl::Duration flush_interval = absl::Milliseconds(20);
  absl::Duration reconnect_min = absl::Milliseconds(200);
  absl::Duration reconnect_max = absl::Seconds(5);
  SandboxPolicy sandbox;  // limits and network policy for every stage
  int64_t max_log_bytes = 1LL << 30;  // per attempt; past it, head and tail are kept
  int64_t max_service_log_bytes = 16 << 20;  // kept of each service's log
  ContainerLogPolicy container_log;         // how the engine keeps stage output
  int64_t inputs_max_bytes = 10LL << 30;     // stages' fetched inputs kept on disk
  ArtifactLimits artifact_limits;     // what one stage may publish
  int64_t cache_max_bytes = 0;        // of cache parts kept locally (0 = no limit)
  int64_t image_cache_bytes = 0;      // of images this agent built (0 = no limit)
  std::string registry_auth_file;     // registry logins (default <work_dir>/registry-auth.json)
};

class Agent {
 public:
  // `channel` leads to the controller; `docker` must outlive the agent.
  Agent(AgentOptions options, std::shared_ptr<grpc::Channel> channel, DockerClient* docker);
  ~Agent();

  // Re-adopts the containers an earlier life of this agent left running (and
  // removes the others), then connects and starts taking stages.
  void Start();
  // Takes no new stages and lets running ones finish for up to `grace`, then
  // shuts down. Blocks.
  void Drain(absl::Duration grace);
  // Makes a Drain in progress return now. Thread-safe.
  void EndDrain();
  // Stops every running stage (their containers are removed), reports them, and
  // disconnects. Blocks until done.
  void Shutdown();

 private:
  struct Running {
    v1::StageRef ref;
    std::string spool_dir;
    std::unique_ptr<LogPump> pump;             // null until the stage thread made it
    std::shared_ptr<StageExecutor> executor;   // shared with cancel threads; null once over in an earlier life
    std::thread thread;
    std::optional<v1::StageStatus> final_status;
    bool status_sent = false;  // the final status went out on the current session
    bool settled = false;      // the controller has the final status
    bool fenced = false;   // stopped because the controller went silent
  };
  using Key = std::tuple<std::string, std::string, int>;

  void Recover();
  // Removes the containers Recover found that no spool claims (after Welcome).
  void RemoveOrphans();
  void ConnectLoop();
  void FlushLoop();
  void OnMessage(const v1::ControllerMessage& message);
  void OnAssign(const v1::StageAssignment& assignment);
  void OnCancel(const v1::CancelStage& cancel);
  // The stage thread: runs (or, with `adopt`, re-adopts) the attempt.
  void RunStage(Key key, v1::StageAssignment assignment, std::optional<std::string> adopt);
  std::unique_ptr<LogPump> NewPump(const v1::StageRef& ref, const std::string& spool_dir);
  void Send(v1::AgentMessage message);
  // Sends each final status whose log has gone out whole (the controller takes no
  // log of an attempt after its final status). The flush thread's job.
  void SendFinalStatuses();
  void SendHeartbeat();
  // Stops every running stage when the controller has been silent for nearly the
  // lease: by the time it gives them to another agent, they no longer run here.
  void FenceIfCutOff();
  std::vector<v1::StageRef> Unsettled();
  v1::RegisterAgent Registration();
  void ReapSettled() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After RunFinished: removes the run's cache volumes once its stopping stages are
  // gone (or `give_up` passed). A chore.
  void RemoveRunVolumes(const std::string& run_id, absl::Time give_up);

  const AgentOptions options_;
  const std::string spool_root_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  DockerClient* docker_;
  SourceCache sources_;
  ArtifactUploader artifacts_;
  CacheVolumes caches_;
  InputArtifacts inputs_;
  ImageCache image_cache_;
  ImageBuilder images_;
  ImagePuller pulls_;

  // Lock order: mu_ before a LogPump's mutex before session_mu_. Pumps send while
  // holding their own mutex, so the send path takes only session_mu_.
  absl::Mutex session_mu_;
  std::shared_ptr<ControllerSession> session_ ABSL_GUARDED_BY(session_mu_);
  bool connected_ ABSL_GUARDED_BY(session_mu_) = false;  // Welcome received on the current session
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(session_mu_) = absl::Seconds(5);
  // For fencing: the lease the controller grants (from Welcome; zero before the
  // first) and when it was last heard from.
  absl::Duration lease_ ABSL_GUARDED_BY(session_mu_) = absl::ZeroDuration();
  absl::Time last_heard_ ABSL_GUARDED_BY(session_mu_);

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool drain_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_now_ ABSL_GUARDED_BY(mu_) = false;  // wakes the flush thread early (a stage ended)
  std::map<Key, Running> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<Key, std::string>> orphans_ ABSL_GUARDED_BY(mu_);  // container ids
  std::vector<std::thread> finished_threads_ ABSL_GUARDED_BY(mu_);

  std::thread connect_thread_;
  std::thread flush_thread_;
  // Timeouts and the Docker work reactions hand off. Last: it goes first, while
  // everything its chores use is still there.
  ChoreTimer chores_;
};

}  // namespace dockyard
