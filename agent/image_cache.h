// The images an agent built, kept on its engine within a byte limit: which stages
// hold them now, when each was last used (one file per image under the cache's
// directory, whose mtime survives restarts), and eviction of the least recently used
// beyond the limit. An image a stage holds, or any container uses, is never removed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/docker_client.h"

namespace dockyard {

class ImageCache {
 public:
  // A stage's claim on an image: while it lives, eviction keeps the image.
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept;
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold();

   private:
    friend class ImageCache;
    Hold(ImageCache* cache, std::string tag) : cache_(cache), tag_(std::move(tag)) {}
    void Release();
    ImageCache* cache_ = nullptr;
    std::string tag_;
  };

  // Counts the images labelled as built by `agent_name` (several agents may share an
  // engine; each keeps its own within its limit). `max_bytes` 0: no limit. Sizes are
  // the engine's, which count the layers images share in each of them.
  ImageCache(DockerClient* docker, std::string dir, std::string agent_name, int64_t max_bytes);

  // Marks `tag` used now and holds it until the Hold is gone.
  Hold Use(const std::string& tag);

  // Removes the least recently used of this agent's built images until the rest fit
  // in the limit, skipping held ones and ones any container uses. Returns a line per
  // removal, for the logs. Call it where no Use of an image it could remove may run
  // at the same time (the image builder calls it under its build lock).
  absl::StatusOr<std::vector<std::string>> Evict();

 private:
  void Release(const std::string& tag);
  std::string UseFile(const std::string& tag) const;

  DockerClient* docker_;
  const std::string dir_;
  const std::string agent_name_;
  const int64_t max_bytes_;
  absl::Mutex mu_;
  std::map<std::string, int> holds_ ABSL_GUARDED_BY(mu_);  // tag -> stages holding it
};

}  // namespace dockyard
