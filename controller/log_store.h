// Stage logs on disk: one append-only file per stage attempt under
// <dir>/<run>/<stage>.<attempt>.log. Chunks arrive with sequence numbers and are
// appended exactly once, in order; readers follow by byte offset, woken by new data
// (Watch). Thread-safe.
//
// Crash safety: next to each log, <stage>.<attempt>.idx gets one fixed-size record
// (sequence number, end offset) per stored piece, written after its data. The first
// use of an attempt after a restart trusts only what complete index records cover:
// the log is cut back to the last one's end (dropping a torn tail) and the next
// sequence number follows from it, so a resend of an unacknowledged chunk appends
// cleanly, without a gap or a duplicate.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

class LogStore {
 public:
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
  // No more data will come for this attempt.
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

 private:
  struct Attempt {
    int64_t next_seq = 0;
    int64_t size = 0;
    int64_t index_size = 0;  // bytes of complete records in the .idx file
    bool closed = false;
  };
  using Key = std::tuple<std::string, std::string, int>;
  std::string PathOf(const v1::StageRef& ref) const;
  std::string IndexPathOf(const v1::StageRef& ref) const;
  Attempt& Load(const v1::StageRef& ref) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rebuilds an attempt from its files (see the crash-safety note above).
  void Recover(const v1::StageRef& ref, Attempt& attempt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends `data`, then its index record; `seq` is -1 for a system line.
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

  const std::string dir_;
  absl::Mutex mu_;
  std::map<Key, Attempt> attempts_ ABSL_GUARDED_BY(mu_);
  std::map<Key, std::map<uint64_t, Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Key> waiter_keys_ ABSL_GUARDED_BY(mu_);
  uint64_t last_waiter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace dockyard
