// Runs one stage attempt in a Docker container, start to finish: source tree,
// cache volumes, container, live log, timeout, exit code, artifacts, clean-up.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/artifact_uploader.h"
#include "agent/cache_volumes.h"
#include "agent/chore_timer.h"
#include "agent/container_labels.h"
#include "agent/docker_client.h"
#include "agent/image_builder.h"
#include "agent/image_puller.h"
#include "agent/input_artifacts.h"
#include "agent/log_pump.h"
#include "agent/service_pod.h"
#include "agent/source_cache.h"
#include "dockyard/v1/agent.pb.h"

namespace dockyard {

// The most an agent lets any stage use (0 = no limit), and whether stages may ask
// for a network. A stage may lower these limits, never raise them.
struct SandboxPolicy {
  int64_t max_memory_bytes = 0;
  int64_t max_pids = 0;
  int64_t max_milli_cpus = 0;
  bool allow_network = false;
};

// Capabilities a stage keeps (every other one is dropped): what pip- and apt-style
// builds need to own, chmod and write files as root and to drop to another user.
inline const std::vector<std::string> kStageCapabilities = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
                                                             "KILL", "SETGID", "SETUID"};

// How the engine keeps stage and service output, which a restarted agent replays
// from the start: `driver` ("" = the engine's default) with room for `replay_bytes`.
struct ContainerLogPolicy {
  std::string driver = "local";
  int64_t replay_bytes = 1LL << 30;
};
// The drivers whose logs the engine can replay (`docker logs`).
absl::Status CheckContainerLogDriver(const std::string& driver);

struct ExecutorDeps {
  DockerClient* docker;
  SourceCache* sources;
  ArtifactUploader* artifacts;
  CacheVolumes* caches;
  InputArtifacts* inputs;
  ImageBuilder* images;
  ImagePuller* pulls;
  ChoreTimer* timer;        // enforces `timeout:`
  std::string agent_name;
  std::string scratch_dir;  // per-agent temp space
  SandboxPolicy sandbox;
  int64_t max_service_log_bytes = 16 << 20;  // kept of each service's log
  ContainerLogPolicy container_log;
};

// The volume behind a cache in one run on one agent (each has its own; snapshots
// carry a cache from run to run and host to host). Several agents may share an engine.
std::string CacheVolumeName(const std::string& run_id, const std::string& cache, const std::string& agent);
// The run a CacheVolumeName belongs to; empty for other volumes.
std::string RunOfCacheVolume(const std::string& volume);

class StageExecutor {
 public:
  StageExecutor(v1::StageAssignment assignment, ExecutorDeps deps, LogPump* pump);

  // Blocks until the attempt is over and its container removed; returns the final
  // status. `on_running` is called once the container has started.
  v1::StageStatus Run(const std::function<void()>& on_running);

  // Takes over `container`, which an earlier life of this agent started for the
  // same attempt: follows its output past what the log pump's spool already holds,
  // then finishes like Run. A timeout counts from the adoption.
  v1::StageStatus Adopt(const std::string& container);

  // Stops the attempt from any thread (kills its container); Run then reports
  // `state` (CANCELLED, or LOST when the attempt was taken away). Blocks on Docker.
  void Cancel(v1::StageState state, const std::string& reason);

  const v1::StageRef& ref() const { return assignment_.stage(); }
  // Fills `status`'s image and image id, once the image is known (the running
  // status says what the run pins). Call from the thread in Run.
  void SetImage(v1::StageStatus& status) const;

 private:
  // Hands the stage's secret values to the log pump for masking: from the
  // assignment, or (re-adopting) from the container's environment `env`.
  // FAILED_PRECONDITION naming a secret the controller did not send.
  absl::Status LoadSecrets(const std::vector<std::string>& env);
  // The image the stage runs: its `image` (pulled as its policy says), or the one
  // built from its Dockerfile (held in the image cache for the attempt). Its
  // services' images are pulled first.
  absl::StatusOr<std::string> ResolveImage();
  // Makes `image` present as `policy` says, with the stage's login when it is for
  // that image's registry; returns its id on this engine.
  absl::StatusOr<std::string> Pull(const std::string& image, v1::PullPolicy policy);
  // FAILED_PRECONDITION when the run pinned another image id than the one found (a
  // stage that may pull first pulls once more, in case this host's copy is stale).
  absl::Status CheckPinnedImage();

  // What every CI system tells a job about itself: CI=true, DOCKYARD_RUN_ID, ...
  std::vector<std::string> CiEnv() const;
  // The stage's container (joined to `network_mode`), holding `sandbox`'s limits.
  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& sandbox);
  // Limits, capabilities and network policy for the stage's containers (and its
  // services'); says in the log what applies. PERMISSION_DENIED for a network this
  // agent does not allow.
  absl::StatusOr<ContainerSpec> Sandbox();
  void MakePod();
  // Starts the stage's services (when it has any); the stage's container then
  // joins the network they share.
  absl::Status StartServices(ContainerSpec& sandbox);
  // Stops the services (if any); their logs are kept unless the stage was cancelled.
  void StopServices();
  absl::Status ShipSource(const std::string& container);
  // Places the artifacts of the stages named in `inputs` (fetched and checked).
  absl::Status ShipInputs(const std::string& container);
  v1::StageStatus Finish(v1::StageState state, int exit_code, const std::string& message);
  // After the command succeeded: uploads the artifacts, then snapshots and
  // publishes each cache (their digests go into `status`).
  absl::Status Publish(const std::string& container, v1::StageStatus& status);
  // Uploads the stage's test reports (optional; a failure is a log line, never a
  // failed stage).
  void PublishReports(const std::string& container);
  // From a started container to the final status; removes the container. `follow`
  // delivers the container's output to the log pump until it ends.
  v1::StageStatus Supervise(const std::string& container, const std::function<absl::Status()>& follow);
  bool CancelRequested() ABSL_LOCKS_EXCLUDED(mu_);

  const v1::StageAssignment assignment_;
  const ExecutorDeps deps_;
  LogPump* pump_;
  std::unique_ptr<ServicePod> pod_;  // when the stage has services
  std::string image_;                // what ResolveImage found
  ImageCache::Hold image_hold_;      // a built image, kept from eviction while the attempt lives
  std::optional<RegistryAuth> login_;  // from the stage's pull secret
  std::string image_id_;             // its id on this engine (reported, and checked against the run's pin)
  int64_t memory_limit_ = 0;  // of the container it created (0: none, or re-adopted)

  absl::Mutex mu_;
  std::string container_ ABSL_GUARDED_BY(mu_);
  v1::StageState cancel_state_ ABSL_GUARDED_BY(mu_) = v1::STAGE_STATE_UNSPECIFIED;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace dockyard
