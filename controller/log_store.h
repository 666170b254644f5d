// Stage logs on disk: one append-only file per stage attempt under
// <dir>/<run>/<stage>.<attempt>.log. Chunks arrive with sequence numbers and are
// appended exactly once, in order; readers follow by byte offset. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

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

 private:
  struct Attempt {
    int64_t next_seq = 0;
    int64_t size = 0;
    bool closed = false;
  };
  using Key = std::tuple<std::string, std::string, int>;
  std::string PathOf(const v1::StageRef& ref) const;
  Attempt& Load(const v1::StageRef& ref) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write(const v1::StageRef& ref, Attempt& attempt, std::string_view data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  absl::Mutex mu_;
  std::map<Key, Attempt> attempts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dockyard
