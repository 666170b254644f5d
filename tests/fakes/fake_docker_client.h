// A DockerClient that keeps an engine in memory, for deterministic tests of what
// uses one (the stage executor, the agent): containers run "programs" the test
// scripts by their command's last argument (output, exit code, or run until
// killed), and any call can be made to fail the way a real engine would — things
// the real engine cannot be made to do on demand.
#pragma once

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/docker_client.h"

namespace dockyard::testing {

class FakeDockerClient final : public DockerClient {
 public:
  using Output = std::vector<std::pair<OutputStream, std::string>>;
  // What a container does once started.
  struct Program {
    Output output;
    int64_t exit_code = 0;
    bool runs_until_killed = false;  // then exits 137 when killed
  };

  FakeDockerClient();

  // --- set up by the test ---
  void AddImage(const std::string& ref, const std::string& id);
  // A container whose command ends with `script` runs `program` (default: exits 0).
  void SetProgram(const std::string& script, Program program);
  // The next call of `method` ("CreateContainer", "WaitContainer", ...) returns `status`.
  void FailNext(const std::string& method, absl::Status status);

  // --- inspected by the test ---
  std::vector<std::string> Calls();               // methods in call order
  std::vector<ContainerSpec> Created();           // every container spec created
  std::set<std::string> LiveContainers();         // created and not removed
  bool Killed(const std::string& id);

  // --- DockerClient ---
  absl::Status Ping() override;
  absl::StatusOr<std::string> ImageId(const std::string& image) override;
  absl::Status BuildImage(const ImageBuildSpec& spec,
                          const std::function<void(std::string_view line)>& progress) override;
  absl::Status PullImage(const std::string& image, const RegistryAuth* auth,
                         const std::function<void(std::string_view line)>& progress) override;
  absl::StatusOr<std::vector<ImageSummary>> ListImages(const std::string& label) override;
  absl::Status RemoveImage(const std::string& image) override;
  absl::StatusOr<bool> OomKilled(const std::string& container) override;
  absl::StatusOr<std::vector<std::string>> ContainerEnv(const std::string& container) override;
  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) override;
  absl::Status PutArchive(const std::string& id, const std::string& dest_dir, const std::string& tar_path) override;
  absl::Status StreamArchive(const std::string& id, const std::string& path, int64_t max_bytes,
                             const std::function<absl::Status(std::string_view)>& sink) override;
  absl::Status StartContainer(const std::string& id) override;
  absl::Status FollowLogs(const std::string& id, const OutputSink& sink) override;
  absl::Status ReadLogs(const std::string& id, const OutputSink& sink) override;
  absl::Status AttachOutput(const std::string& id, const std::function<void()>& attached,
                            const OutputSink& sink) override;
  absl::StatusOr<int64_t> WaitContainer(const std::string& id) override;
  absl::StatusOr<ExecResult> Exec(const std::string& id, const std::vector<std::string>& cmd,
                                  absl::Duration timeout) override;
  absl::Status KillContainer(const std::string& id) override;
  absl::Status RemoveContainer(const std::string& id) override;
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(const std::string& label) override;
  absl::Status CreateVolume(const std::string& name, const std::map<std::string, std::string>& labels) override;
  absl::Status RemoveVolume(const std::string& name) override;
  absl::StatusOr<bool> VolumeExists(const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListVolumes(const std::string& label) override;

 private:
  struct Container {
    ContainerSpec spec;
    Program program;
    std::string state = "created";  // created, running, exited
    int64_t exit_code = 0;
    bool killed = false;
  };
  // Records the call; the injected failure for it, if any (else OK).
  absl::Status Enter(const std::string& method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Exit(Container& c, int64_t code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until container `id` is in none of `states` (or gone).
  void AwaitStateOtherThan(const std::string& id, std::initializer_list<const char*> states)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What container `id`'s program prints, for `method` (recorded, and failing if told to).
  absl::StatusOr<Output> OutputOf(const std::string& method, const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  std::map<std::string, std::string> images_ ABSL_GUARDED_BY(mu_);  // ref -> id
  std::map<std::string, Program> programs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<ContainerSpec> created_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Container> containers_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> killed_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> volumes_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace dockyard::testing
