// Where a stage log's bytes live, under LogStore (which keeps sequence numbers,
// closing and followers): files in the data dir (FileLogBackend), or chunks in
// PostgreSQL archived to the blob store once the attempt settles
// (PostgresLogBackend), so another controller can read them.
//
// Contract: pieces are written at increasing offsets, each after the last; Recover
// reports what a previous process left complete (a torn piece is dropped, never
// half-read). LogStore calls Recover, Write and Settled one at a time; Read may run
// beside them and sees only whole pieces.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

class LogBackend {
 public:
  virtual ~LogBackend() = default;

  struct Recovered {
    int64_t size = 0;      // bytes of complete pieces
    int64_t next_seq = 0;  // one past the last agent chunk's sequence number
  };
  // UNAVAILABLE when the backend cannot be asked now (LogStore asks again later).
  virtual absl::StatusOr<Recovered> Recover(const v1::StageRef& ref) = 0;
  // Stores `data` at `offset` (the current size) as piece `seq` (-1: a line Dockyard
  // wrote itself). Durable when it returns OK; on an error nothing of it counts.
  virtual absl::Status Write(const v1::StageRef& ref, int64_t seq, int64_t offset, std::string_view data) = 0;
  // Up to `max_bytes` from `offset`, within the first `size` bytes.
  virtual absl::StatusOr<std::string> Read(const v1::StageRef& ref, int64_t offset, int64_t max_bytes,
                                           int64_t size) = 0;
  // No more pieces will come (the attempt settled at `size` bytes). Must not block.
  virtual void Settled(const v1::StageRef& ref, int64_t size) { (void)ref, (void)size; }

  // Retention: deletes every log of the run (its archive blobs stay until nothing
  // references them).
  virtual absl::Status RemoveRun(const std::string& run_id) = 0;
  // Digests of the archive blobs the logs of runs other than `except_runs` use (the
  // blob collector keeps them), including one published but not yet recorded: every
  // archive blob stored before the call is in the answer.
  virtual absl::StatusOr<std::set<std::string>> ArchiveDigests(const std::set<std::string>& except_runs) {
    (void)except_runs;
    return std::set<std::string>();
  }
};

}  // namespace dockyard
