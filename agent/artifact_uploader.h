// A stage's artifacts: read straight out of its stopped container (the engine's
// archive, streamed), matched against the stage's globs, and sent to the controller
// in one call per stage, each file hashed while it is sent (one pass, no scratch
// copy). The controller verifies every file and publishes them together.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/docker_client.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

struct UploadedArtifact {
  std::string path;
  int64_t size = 0;
  std::string sha256;
};

// What one stage may publish (0 = no limit). The size bounds each archive read out of
// the container, so a huge (or sparse) file is refused as soon as it passes the limit.
struct ArtifactLimits {
  int64_t max_bytes = 0;
  int max_files = 0;
};

class ArtifactUploader {
 public:
  // Both must outlive the uploader.
  ArtifactUploader(DockerClient* docker, v1::AgentService::StubInterface* stub, ArtifactLimits limits = {})
      : docker_(docker), stub_(stub), limits_(limits) {}

  // Uploads every file of `container` matching `specs`. FAILED_PRECONDITION names a
  // pattern that matched nothing and is not optional, or two files of one name; then
  // nothing is published. A broken connection starts the upload over (the files are
  // read from the container again). With `reports`, the files are published as the
  // stage's test reports. Blocks.
  absl::StatusOr<std::vector<UploadedArtifact>> UploadAll(
      const v1::StageRef& ref, const std::string& container,
      const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, bool reports = false);
  // Uploads the file at `local_path` as the log of the stage's service `service`,
  // resuming from what the controller holds when a try is cut off.
  absl::StatusOr<UploadedArtifact> UploadServiceLog(const v1::StageRef& ref, const std::string& service,
                                                    const std::string& local_path);

 private:
  // One try of UploadAll over `context`. A failure that is not the call's own comes
  // back in `failure` (and the call is cancelled).
  grpc::Status TryUpload(grpc::ClientContext& context, const v1::StageRef& ref, const std::string& container,
                         const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, bool reports,
                         std::vector<UploadedArtifact>& uploaded, absl::Status& failure);

  DockerClient* docker_;
  v1::AgentService::StubInterface* stub_;
  const ArtifactLimits limits_;
};

}  // namespace dockyard
