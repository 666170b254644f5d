// A stage's artifacts: read out of its stopped container (Docker archive download),
// matched against the stage's globs, and streamed to the controller with their size
// and sha256, which the controller verifies before publishing.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/docker_client.h"
#include "common/tar_archive.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

struct UploadedArtifact {
  std::string path;
  int64_t size = 0;
  std::string sha256;
};

// What one stage may publish (0 = no limit). The size bounds each archive read out of
// the container, so a huge (or sparse) file is refused before it costs scratch space.
struct ArtifactLimits {
  int64_t max_bytes = 0;
  int max_files = 0;
};

class ArtifactUploader {
 public:
  // Both must outlive the uploader.
  ArtifactUploader(DockerClient* docker, v1::AgentService::StubInterface* stub, ArtifactLimits limits = {})
      : docker_(docker), stub_(stub), limits_(limits) {}

  // Collects and uploads every file of `container` matching `specs`, using
  // `scratch_dir` (created, then removed). FAILED_PRECONDITION names a pattern that
  // matched nothing and is not optional. Blocks.
  // With `reports`, the files are published as the stage's test reports.
  absl::StatusOr<std::vector<UploadedArtifact>> UploadAll(
      const v1::StageRef& ref, const std::string& container,
      const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, const std::string& scratch_dir,
      bool reports = false);
  // Uploads the file at `local_path` as the log of the stage's service `service`.
  absl::StatusOr<UploadedArtifact> UploadServiceLog(const v1::StageRef& ref, const std::string& service,
                                                    const std::string& local_path);

 private:
  // UploadAll without removing `scratch_dir` afterwards.
  absl::StatusOr<std::vector<UploadedArtifact>> UploadFrom(
      const v1::StageRef& ref, const std::string& container,
      const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, const std::string& scratch_dir,
      bool reports);
  // `service`: the file is that service's log rather than an artifact.
  absl::StatusOr<UploadedArtifact> Upload(const v1::StageRef& ref, const ExtractedFile& file, bool report,
                                          const std::string& service = "");

  DockerClient* docker_;
  v1::AgentService::StubInterface* stub_;
  const ArtifactLimits limits_;
};

// The directory Docker is asked for: the pattern's leading components that hold no
// glob characters ("/wheelhouse/*.whl" -> "/wheelhouse").
std::string GlobRoot(const std::string& pattern);

}  // namespace dockyard
