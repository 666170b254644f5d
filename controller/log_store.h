// Stage logs: chunks arrive with sequence numbers and are appended exactly once, in
// order; readers follow by byte offset, woken by new data (Watch). Thread-safe. The
// bytes live in a LogBackend (files, or PostgreSQL then the blob store).
//
// Crash safety: the first use of an attempt after a restart asks the backend what it
// holds complete; the next sequence number follows from it, so a resend of an
// unacknowledged chunk appends cleanly, without a gap or a duplicate.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/log_backend.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

class LogStore {
 public:
  explicit LogStore(std::unique_ptr<LogBackend> backend);
  // Files under `dir` (FileLogBackend).
  explicit LogStore(std::string dir);

  // Appends chunk `seq` when it is the next one the attempt expects; a chunk below
  // that was stored before and is ignored. Returns the next expected sequence
  // number. FAILED_PRECONDITION for a gap (the sender must resend from the
  // returned number), or for an attempt already closed.
  absl::StatusOr<int64_t> Append(const v1::StageRef& ref, int64_t seq, std::string_view data);
  // The next sequence number the attempt expects (0 for a new attempt).
  int64_t NextSeq(const v1::StageRef& ref);
  // Appends a line Dockyard itself writes (e.g. why a stage was skipped or lost).
  absl::Status AppendSystemLine(const v1::StageRef& ref, std::string_view line);
  // No more data will come for this attempt (the backend may now archive it).
  void Close(const v1::StageRef& ref);

  struct Slice {
    std::string data;
    int64_t size = 0;     // bytes stored so far
    bool closed = false;  // size is final
  };
  // Up to `max_bytes` from `offset`.
  absl::StatusOr<Slice> Read(const v1::StageRef& ref, int64_t offset, int64_t max_bytes);

  // Calls `wake` once when the attempt holds more than `offset` bytes or is closed:
  // at once (returning 0) if it already does, else from the thread that appends or
  // closes, with no lock of the store held. Returns an id for Unwatch. For followers:
  // woken by the data, not by a timer.
  uint64_t Watch(const v1::StageRef& ref, int64_t offset, std::function<void()> wake);
  // Drops a watch that has not fired: true; false when it fired (or is firing).
  bool Unwatch(uint64_t id);

  // Retention: forgets the run's attempts and deletes its logs.
  absl::Status RemoveRun(const std::string& run_id);

  LogBackend& backend() { return *backend_; }

 private:
  struct Attempt {
    int64_t next_seq = 0;
    int64_t size = 0;
    bool closed = false;
    bool known = false;  // recovered from the backend (else sizes are unknown)
  };
  using Key = std::tuple<std::string, std::string, int>;
  // The attempt, recovered from the backend on first use.
  Attempt& Load(const v1::StageRef& ref) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static absl::Status Unknown(const v1::StageRef& ref);
  // Appends `data` as piece `seq` (-1 for a system line).
  absl::Status Write(const v1::StageRef& ref, Attempt& attempt, int64_t seq, std::string_view data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Waiter {
    int64_t offset;
    std::function<void()> wake;
  };
  // Takes the waiters of `ref` that its size or closing now satisfies.
  std::vector<std::function<void()>> Ready(const v1::StageRef& ref, const Attempt& attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void WakeAll(std::vector<std::function<void()>> wakes);

  const std::unique_ptr<LogBackend> backend_;
  absl::Mutex mu_;
  std::map<Key, Attempt> attempts_ ABSL_GUARDED_BY(mu_);
  std::map<Key, std::map<uint64_t, Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Key> waiter_keys_ ABSL_GUARDED_BY(mu_);
  uint64_t last_waiter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace dockyard
