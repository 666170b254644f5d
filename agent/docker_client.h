// The slice of the Docker Engine API an agent needs. The real implementation talks
// to the engine over its unix socket (docker_engine_client.h); tests of error paths
// the real engine cannot be made to produce may use a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dockyard {

enum class OutputStream { kStdout = 1, kStderr = 2 };

struct ContainerSpec {
  std::string name;                          // empty: Docker picks one
  std::string image;
  std::vector<std::string> cmd;
  std::vector<std::string> entrypoint;       // empty: the image's own
  std::string workdir;
  std::vector<std::string> env;              // KEY=VALUE
  std::map<std::string, std::string> labels;
  std::string network_mode = "none";
  std::vector<std::string> binds;            // "volume-name:/container/path"
  std::vector<std::string> extra_hosts;      // "name:address" lines in /etc/hosts
  // The sandbox: what the container may do and use. 0 = no limit.
  bool no_new_privileges = true;
  std::vector<std::string> cap_add;          // after dropping every capability
  int64_t memory_bytes = 0;                  // also the limit of memory + swap: no swap
  int64_t pids_limit = 0;
  int64_t nano_cpus = 0;
  // How the engine keeps the container's output (what `docker logs` and a re-adopting
  // agent replay): "" is the engine's default driver.
  std::string log_driver;
  std::map<std::string, std::string> log_options;
};

// What a command run inside a container (Exec) ended with.
struct ExecResult {
  int64_t exit_code = -1;
  std::string output_tail;                   // the last few KiB of its stdout and stderr
};

// What the engine is asked to build (POST /build).
struct ImageBuildSpec {
  std::string context_tar;                  // path of the build context as a tar
  std::string dockerfile;                   // path inside the context
  std::string tag;                          // repository:tag given to the result
  std::map<std::string, std::string> args;  // build arguments
  std::string target;                       // "" = the last stage
  std::string network_mode = "none";        // of its RUN steps
  std::map<std::string, std::string> labels;
};

struct ContainerSummary {
  std::string id;
  std::string image_id;                      // "sha256:..."
  std::string state;                         // "created", "running", "exited", ...
  std::map<std::string, std::string> labels;
};

struct ImageSummary {
  std::string id;                            // "sha256:..."
  std::vector<std::string> tags;             // "repository:tag"
  int64_t size = 0;                          // bytes, with the layers it shares with others
  std::map<std::string, std::string> labels;
};

// A registry login, sent to the engine for one pull (never logged, never in an error).
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string server;                        // the registry's host[:port]
};

// Every method blocks until the engine answers: call from worker threads, never from
// a gRPC reaction. Implementations are thread-safe. Errors: UNAVAILABLE when the
// engine does not answer, NOT_FOUND for a missing image/container/volume (the message
// names it), INTERNAL for other engine errors (with the engine's message).
class DockerClient {
 public:
  using OutputSink = std::function<void(OutputStream, std::string_view)>;

  virtual ~DockerClient() = default;

  virtual absl::Status Ping() = 0;
  // Whether the engine has `image`: ImageId's NOT_FOUND is false, not an error.
  absl::StatusOr<bool> ImageExists(const std::string& image) {
    absl::StatusOr<std::string> id = ImageId(image);
    if (absl::IsNotFound(id.status())) return false;
    if (!id.ok()) return id.status();
    return true;
  }
  // The image's id ("sha256:..."); NOT_FOUND when the engine does not have it.
  virtual absl::StatusOr<std::string> ImageId(const std::string& image) = 0;
  // Builds an image, handing each line of the build's output to `progress` (on this
  // thread). FAILED_PRECONDITION with the engine's reason when the build fails.
  virtual absl::Status BuildImage(const ImageBuildSpec& spec,
                                  const std::function<void(std::string_view line)>& progress) = 0;
  // Pulls `image` (a missing tag means "latest"), with `auth` when not null, handing
  // each step of the engine's progress to `progress` as a line. FAILED_PRECONDITION
  // with the registry's reason when the pull fails.
  virtual absl::Status PullImage(const std::string& image, const RegistryAuth* auth,
                                 const std::function<void(std::string_view line)>& progress) = 0;
  // Images carrying `label` ("key" or "key=value").
  virtual absl::StatusOr<std::vector<ImageSummary>> ListImages(const std::string& label) = 0;
  // Removes a tag, or an image by id (and its untagged parents). OK when it is already
  // gone; FAILED_PRECONDITION when a container uses it.
  virtual absl::Status RemoveImage(const std::string& image) = 0;
  // True when the kernel killed the container's process for exceeding its memory limit.
  virtual absl::StatusOr<bool> OomKilled(const std::string& container) = 0;
  // The container's environment ("KEY=VALUE"). Errors never quote it.
  virtual absl::StatusOr<std::vector<std::string>> ContainerEnv(const std::string& container) = 0;
  // Returns the container id. Never pulls: a missing image is NOT_FOUND naming it.
  virtual absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) = 0;
  // Extracts the tar at `tar_path` into `dest_dir` of the container (which must exist).
  virtual absl::Status PutArchive(const std::string& id, const std::string& dest_dir,
                                  const std::string& tar_path) = 0;
  // Streams Docker's tar of `path` in the container to `sink`, on this thread, as it
  // arrives. With `max_bytes` > 0, a tar growing past it is abandoned
  // (RESOURCE_EXHAUSTED, naming --max_artifact_bytes). NOT_FOUND when `path` is not
  // there; a `sink` error ends the stream with that error.
  virtual absl::Status StreamArchive(const std::string& id, const std::string& path, int64_t max_bytes,
                                     const std::function<absl::Status(std::string_view)>& sink) = 0;
  // StreamArchive into the file `out_tar_path`; on any error nothing is left behind.
  absl::Status GetArchive(const std::string& id, const std::string& path, const std::string& out_tar_path,
                          int64_t max_bytes = 0);
  // OK when already running. Starting a container that has exited runs it again.
  virtual absl::Status StartContainer(const std::string& id) = 0;
  // Streams the container's stdout/stderr from its very start, decoded from Docker's
  // multiplexed frames, calling `sink` on this thread; returns once the container's
  // output ends (it exited or was removed). Each stream's bytes arrive in order.
  // Call it after StartContainer: the engine ends a follow of a container that has not
  // started yet at once, with no output. After exit it replays everything and returns.
  virtual absl::Status FollowLogs(const std::string& id, const OutputSink& sink) = 0;
  // Attaches to a created container's stdout/stderr, calls `attached` once the
  // engine holds the attachment (start the container only then: nothing is missed),
  // and hands the output to `sink` on this thread until the container's output ends.
  // The output comes straight from the container, not back out of the engine's log
  // files, so this is the cheap way to stream a stage that this agent starts.
  virtual absl::Status AttachOutput(const std::string& id, const std::function<void()>& attached,
                                    const OutputSink& sink) = 0;
  // The container's stdout/stderr so far, without following (for a stopped one: all).
  virtual absl::Status ReadLogs(const std::string& id, const OutputSink& sink) = 0;
  // Blocks until the container stops; returns its exit code. Call it after
  // StartContainer: for a container never started the engine answers 0 at once.
  virtual absl::StatusOr<int64_t> WaitContainer(const std::string& id) = 0;
  // Runs `cmd` inside the running container and waits for it, at most `timeout`
  // (DEADLINE_EXCEEDED then; the command may still run until the container stops).
  virtual absl::StatusOr<ExecResult> Exec(const std::string& id, const std::vector<std::string>& cmd,
                                          absl::Duration timeout) = 0;
  // SIGKILL. OK when the container is not running.
  virtual absl::Status KillContainer(const std::string& id) = 0;
  // Force-removes the container. OK when it is already gone.
  virtual absl::Status RemoveContainer(const std::string& id) = 0;
  // All containers (any state) carrying `label` ("key" or "key=value"; "" for all).
  virtual absl::StatusOr<std::vector<ContainerSummary>> ListContainers(const std::string& label) = 0;
  // Creates a local volume; OK when it already exists.
  virtual absl::Status CreateVolume(const std::string& name,
                                    const std::map<std::string, std::string>& labels) = 0;
  // OK when it is already gone.
  virtual absl::Status RemoveVolume(const std::string& name) = 0;
  virtual absl::StatusOr<bool> VolumeExists(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListVolumes(const std::string& label) = 0;
};

}  // namespace dockyard
