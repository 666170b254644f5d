// BlobStore on the local disk: <dir>/sha256/<2 hex>/<digest>, uploads written to
// <dir>/tmp (or, resumable, <dir>/partial/<digest>) and renamed into place after
// verification. Thread-safe.
#pragma once

#include <atomic>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controller/blob_store.h"

namespace dockyard {

class FileBlobStore final : public BlobStore {
 public:
  // Creates the directories and removes temp files a crash or cut-off upload left,
  // and partial uploads nobody resumed for a day.
  static absl::StatusOr<std::unique_ptr<FileBlobStore>> Open(const std::string& dir);

  absl::StatusOr<std::unique_ptr<Writer>> NewWriter(const std::string& sha256, int64_t size) override;
  absl::Status PublishAll(std::vector<std::unique_ptr<Writer>> sealed) override;
  absl::StatusOr<std::unique_ptr<Writer>> NewResumableWriter(const std::string& sha256, int64_t size,
                                                             int64_t offset) override;
  int64_t PartialSize(const std::string& sha256) override;
  bool Contains(const std::string& sha256) override;
  absl::StatusOr<int64_t> Size(const std::string& sha256) override;
  absl::StatusOr<std::string> Read(const std::string& sha256, int64_t offset, int64_t max_bytes) override;
  std::vector<Listed> List() override;
  absl::Status Remove(const std::string& sha256) override;

  std::string PathOf(const std::string& sha256) const;

 private:
  explicit FileBlobStore(std::string dir) : dir_(std::move(dir)) {}
  void Release(const std::string& sha256);

  const std::string dir_;
  std::atomic<uint64_t> next_tmp_{0};
  absl::Mutex mu_;
  std::set<std::string> resuming_ ABSL_GUARDED_BY(mu_);  // partials with a live writer
};

}  // namespace dockyard
