// The services one stage attempt runs beside (the database its tests use), in the
// pod model: an idle container holds a network namespace whose only interface is
// loopback, the services and then the stage join it, and each service's name maps
// to 127.0.0.1 in the shared /etc/hosts. No bridge, no addresses beyond loopback.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/artifact_uploader.h"
#include "agent/docker_client.h"
#include "agent/log_pump.h"
#include "dockyard/v1/agent.pb.h"

namespace dockyard {

struct ServicePodDeps {
  DockerClient* docker;
  ArtifactUploader* artifacts;  // where the services' logs go when the stage ends
  LogPump* pump;                // the stage's log: what the pod did, and why it failed
  std::string agent_name;
  std::string scratch_dir;
  int64_t max_service_log_bytes = 16 << 20;  // kept per service; the rest is cut (said in it)
};

// Threads: Start, Adopt and Stop are called by the executor's thread, one after the
// other; ExitNote from the same thread. Watchers (one per service) run in between
// and only write to the pump. Stop must be called before destruction once Start or
// Adopt was.
class ServicePod {
 public:
  ServicePod(const v1::StageAssignment& assignment, ServicePodDeps deps);
  ~ServicePod();
  ServicePod(const ServicePod&) = delete;
  ServicePod& operator=(const ServicePod&) = delete;

  // Creates the namespace holder (from `stage_image`, running `sleep`), starts
  // every service with `sandbox`'s limits and capabilities and `env` under each
  // service's own, then runs each `ready` until it exits 0. Returns the network mode
  // the stage's container joins ("container:<id>"). FAILED_PRECONDITION names a
  // service that exited or was not ready within its ready_timeout, with its log
  // tail; CANCELLED when `cancelled` turns true meanwhile.
  absl::StatusOr<std::string> Start(const std::string& stage_image, const ContainerSpec& sandbox, const std::vector<std::string>& env,
                                    const std::function<bool()>& cancelled);
  // Takes over the pod of this attempt an earlier life of this agent started.
  absl::Status Adopt();
  // "" while every service runs; else which exited while the stage ran, and how.
  std::string ExitNote();
  // Kills the services, keeps their logs (uploaded as the stage's service logs when
  // `upload_logs`), and removes every container of the pod. Safe to call twice.
  void Stop(bool upload_logs);

 private:
  struct Member {
    std::string name;
    std::string id;
    std::thread watcher;
    std::optional<int64_t> exit_code;  // guarded by the pod's mu_
  };
  std::string ContainerName(const std::string& suffix) const;
  std::map<std::string, std::string> Labels(const std::string& role, const std::string& service) const;
  // Runs `service.ready` until it exits 0 (FAILED_PRECONDITION when it never does).
  absl::Status AwaitReady(const v1::Service& service, Member& member, const std::function<bool()>& cancelled);
  // Reads the log of the member's container so far into a bounded file, or keeps
  // only its last lines when `path` is empty. Returns the last lines.
  std::string ReadLog(const Member& member, const std::string& path);
  void Watch(Member& member);

  const v1::StageAssignment& assignment_;
  const ServicePodDeps deps_;
  std::string pod_;  // the namespace holder's id
  std::vector<std::unique_ptr<Member>> members_;
  bool stopped_ = false;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // every service was ready: exits are news
};

}  // namespace dockyard
