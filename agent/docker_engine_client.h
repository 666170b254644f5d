// The real DockerClient: speaks the Docker Engine HTTP API over the engine's unix
// socket with libcurl. Pulls only when asked to (PullImage); creating a container never pulls.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/docker_client.h"
#include "agent/docker_log_decoder.h"

namespace dockyard {

// Each call uses its own curl handle, so one instance may be shared by any number of
// threads. Short calls time out after two minutes; FollowLogs, WaitContainer and the
// archive transfers have no total timeout because they last as long as the container
// or the data does. Connecting gives up after 5 s (UNAVAILABLE naming the socket).
// The unix socket path in a DOCKER_HOST-style address ("unix:///run/docker.sock", or a
// bare absolute path). INVALID_ARGUMENT for other schemes: the agent speaks to a local
// engine only.
absl::StatusOr<std::string> DockerSocketPath(const std::string& docker_host);

class DockerEngineClient final : public DockerClient {
 public:
  explicit DockerEngineClient(std::string socket_path = "/var/run/docker.sock",
                              std::string api_version = "v1.41");

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
  // Whether the container's process runs now.
  absl::StatusOr<bool> Running(const std::string& container);
  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) override;
  absl::Status PutArchive(const std::string& id, const std::string& dest_dir,
                          const std::string& tar_path) override;
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
  absl::Status CreateVolume(const std::string& name,
                            const std::map<std::string, std::string>& labels) override;
  absl::Status RemoveVolume(const std::string& name) override;
  absl::StatusOr<bool> VolumeExists(const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListVolumes(const std::string& label) override;

 private:
  // One logs request (following or not), its frames fed to `decoder` to the end.
  absl::Status Logs(const std::string& id, bool follow, DockerLogDecoder& decoder);
  // The container's "State" object from the engine's inspect.
  absl::StatusOr<nlohmann::json> State(const std::string& container);
  std::string socket_path_;
  std::string api_version_;
};

}  // namespace dockyard
