// Images built from a Dockerfile in a stage's shipped source tree: the build context
// is cut out of the source tar, the engine builds it (no network unless the agent
// allows it), and the result is tagged by the digest of everything that went in
// (the context with its Dockerfile, the build arguments, the target, the ids of the
// base images), so an unchanged image is built once per agent and then reused by
// every stage and run that asks for it.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/docker_client.h"
#include "agent/image_cache.h"
#include "agent/source_cache.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

// The repository every built image is tagged in; the tag is the inputs' digest.
inline constexpr char kBuiltImageRepository[] = "dockyard/built";

// A built image a stage runs, held in the image cache while the stage keeps it.
struct BuiltImage {
  std::string tag;
  ImageCache::Hold hold;
};

class ImageBuilder {
 public:
  // All must outlive the builder. `scratch_dir` holds build contexts while they are sent.
  ImageBuilder(DockerClient* docker, SourceCache* sources, ImageCache* cache, std::string scratch_dir,
               std::string agent_name, bool allow_network);

  // The image `build` describes in the source tree `source_digest`, built first
  // unless this engine has it, and held for the caller. A new build then evicts what
  // the image cache no longer has room for. Progress (and whether it was reused) goes
  // to `log`, a line at a time. FAILED_PRECONDITION for a build that fails (with the
  // engine's reason) or a Dockerfile missing from the tree. Blocks; one build at a
  // time per agent, so stages waiting for the same image build it once.
  absl::StatusOr<BuiltImage> Ensure(const v1::ImageBuild& build, const std::string& source_digest,
                                     const std::function<void(std::string_view)>& log);

 private:
  // The ids of the images the Dockerfile starts FROM that this engine has ("" for
  // none), in order: part of the inputs' digest, so a changed base image rebuilds.
  std::string BaseImageIds(const std::string& dockerfile);

  DockerClient* docker_;
  SourceCache* sources_;
  ImageCache* cache_;
  const std::string scratch_dir_;
  const std::string agent_name_;
  const bool allow_network_;
  absl::Mutex mu_;
};

}  // namespace dockyard
