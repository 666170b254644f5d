#include "agent/image_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agent/image_builder.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace dockyard {

ImageCache::Hold::Hold(Hold&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)), tag_(std::move(other.tag_)) {}

ImageCache::Hold& ImageCache::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    Release();
    cache_ = std::exchange(other.cache_, nullptr);
    tag_ = std::move(other.tag_);
  }
  return *this;
}

ImageCache::Hold::~Hold() { Release(); }

void ImageCache::Hold::Release() {
  if (cache_ != nullptr) std::exchange(cache_, nullptr)->Release(tag_);
}

ImageCache::ImageCache(DockerClient* docker, std::string dir, std::string agent_name, int64_t max_bytes)
    : docker_(docker), dir_(std::move(dir)), agent_name_(std::move(agent_name)), max_bytes_(max_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
}

std::string ImageCache::UseFile(const std::string& tag) const {
  return absl::StrCat(dir_, "/", absl::StrReplaceAll(tag, {{"/", "_"}, {":", "_"}}));
}

ImageCache::Hold ImageCache::Use(const std::string& tag) {
  {
    absl::MutexLock lock(&mu_);
    ++holds_[tag];
  }
  // The file's mtime is the last use: created, or touched, now.
  const int fd = open(UseFile(tag).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    futimens(fd, nullptr);
    close(fd);
  }
  return Hold(this, tag);
}

void ImageCache::Release(const std::string& tag) {
  absl::MutexLock lock(&mu_);
  if (auto it = holds_.find(tag); it != holds_.end() && --it->second <= 0) holds_.erase(it);
}

absl::StatusOr<std::vector<std::string>> ImageCache::Evict() {
  std::vector<std::string> removed;
  if (max_bytes_ <= 0) return removed;
  ASSIGN_OR_RETURN(std::vector<ImageSummary> images, docker_->ListImages(absl::StrCat("dockyard.built-by=", agent_name_)));
  int64_t total = 0;
  for (const ImageSummary& image : images) total += image.size;
  if (total <= max_bytes_) return removed;
  ASSIGN_OR_RETURN(std::vector<ContainerSummary> containers, docker_->ListContainers(""));
  std::set<std::string> in_use;
  for (const ContainerSummary& c : containers) in_use.insert(c.image_id);
  struct Candidate {
    int64_t last_use_ns = 0;  // 0: never recorded (built by an earlier life that lost its files)
    const ImageSummary* image;
    std::vector<std::string> tags;  // its dockyard/built ones
  };
  std::vector<Candidate> candidates;
  {
    absl::MutexLock lock(&mu_);
    for (const ImageSummary& image : images) {
      Candidate c{0, &image, {}};
      bool held = in_use.count(image.id) != 0;
      for (const std::string& tag : image.tags) {
        if (!absl::StartsWith(tag, absl::StrCat(kBuiltImageRepository, ":"))) continue;
        c.tags.push_back(tag);
        held = held || holds_.count(tag) != 0;
        struct stat st {};
        if (stat(UseFile(tag).c_str(), &st) == 0) {
          c.last_use_ns = std::max<int64_t>(c.last_use_ns, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
        }
      }
      if (!held && !c.tags.empty()) candidates.push_back(std::move(c));
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.last_use_ns < b.last_use_ns; });
  for (const Candidate& c : candidates) {
    if (total <= max_bytes_) break;
    bool gone = true;
    for (const std::string& tag : c.tags) {
      if (absl::Status st = docker_->RemoveImage(tag); !st.ok()) {
        gone = false;  // a container took it since: it stays
        break;
      }
      std::error_code ec;
      std::filesystem::remove(UseFile(tag), ec);
    }
    if (!gone) continue;
    total -= c.image->size;
    removed.push_back(absl::StrCat("image cache: removed ", absl::StrJoin(c.tags, ", "), " (", FormatBytes(c.image->size),
                                   ", the least recently used) to keep this agent's built images within ",
                                   FormatBytes(max_bytes_), " (--image_cache_bytes)"));
  }
  return removed;
}

}  // namespace dockyard
