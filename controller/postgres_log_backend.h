// Stage logs in PostgreSQL, for controllers that share their state: each piece is
// one row (committed before LogStore acknowledges it), so any controller reads what
// another wrote. When an attempt settles, a background archiver streams its pieces
// into the blob store as one blob (by digest), records it, and drops the pieces in
// the same transaction; readers switch from pieces to the blob at that commit, and
// the bytes at every offset are the same either way.
#pragma once

#include <atomic>
#include <deque>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controller/blob_store.h"
#include "controller/log_backend.h"
#include "controller/postgres_connection.h"

namespace dockyard {

class PostgresLogBackend final : public LogBackend {
 public:
  // `archive` must outlive the backend.
  PostgresLogBackend(const std::string& connect_string, const std::string& describe, BlobStore* archive);
  // Stops the archiver; an attempt it did not reach is archived after the next start
  // (the controller closes settled attempts again when it restores them).
  ~PostgresLogBackend() override;

  absl::StatusOr<Recovered> Recover(const v1::StageRef& ref) override;
  absl::Status Write(const v1::StageRef& ref, int64_t seq, int64_t offset, std::string_view data) override;
  absl::StatusOr<std::string> Read(const v1::StageRef& ref, int64_t offset, int64_t max_bytes,
                                   int64_t size) override;
  void Settled(const v1::StageRef& ref, int64_t size) override;
  absl::Status RemoveRun(const std::string& run_id) override;
  absl::StatusOr<std::set<std::string>> ArchiveDigests(const std::set<std::string>& except_runs) override;

  // Every piece written from now on first checks that `holder` still leads in term
  // `*epoch` (LeaderLease::Fence); `epoch` must outlive the backend.
  void SetFence(std::string holder, const std::atomic<int64_t>* epoch) {
    fence_holder_ = std::move(holder);
    fence_epoch_ = epoch;
  }

  // Waits until every attempt queued so far is archived (or failed to be); for tests.
  void WaitForArchives();

 private:
  void ArchiveLoop();
  absl::Status Archive(const v1::StageRef& ref, int64_t size);

  BlobStore* const archive_;
  std::string fence_holder_;
  const std::atomic<int64_t>* fence_epoch_ = nullptr;
  PostgresConnection writer_;    // Recover and Write (LogStore calls them one at a time)
  PostgresConnection reader_;    // Read, beside them
  PostgresConnection archiver_;  // the archive loop
  absl::Mutex mu_;
  std::deque<std::pair<v1::StageRef, int64_t>> queue_ ABSL_GUARDED_BY(mu_);
  bool archiving_ ABSL_GUARDED_BY(mu_) = false;
  // The archive blob between its publish and the row naming it: not garbage.
  std::string publishing_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace dockyard
