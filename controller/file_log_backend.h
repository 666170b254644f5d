// Stage logs as files: one append-only file per attempt under
// <dir>/<run>/<stage>.<attempt>.log. Crash safety: once the agent sent a chunk, next to
// the log <stage>.<attempt>.idx gets one fixed-size record (sequence number, end
// offset) per piece, written after its data; Recover trusts only what complete records
// cover and cuts the log back to the last one's end (dropping a torn tail). Before the
// first chunk the log holds only Dockyard's own lines and has no index: Recover keeps
// its whole lines.
#pragma once

#include <map>
#include <string>
#include <tuple>

#include "controller/log_backend.h"

namespace dockyard {

class FileLogBackend final : public LogBackend {
 public:
  explicit FileLogBackend(std::string dir) : dir_(std::move(dir)) {}

  absl::StatusOr<Recovered> Recover(const v1::StageRef& ref) override;
  absl::Status Write(const v1::StageRef& ref, int64_t seq, int64_t offset, std::string_view data) override;
  absl::StatusOr<std::string> Read(const v1::StageRef& ref, int64_t offset, int64_t max_bytes,
                                   int64_t size) override;
  absl::Status RemoveRun(const std::string& run_id) override;

 private:
  using Key = std::tuple<std::string, std::string, int>;
  struct Index {
    bool exists = false;  // the attempt's .idx file is there
    int64_t size = 0;     // bytes of complete records in it
  };
  std::string PathOf(const v1::StageRef& ref) const;
  std::string IndexPathOf(const v1::StageRef& ref) const;
  // Creates the attempt's index, covering the first `covered` bytes (system lines).
  absl::Status StartIndex(const v1::StageRef& ref, Index& index, int64_t covered);

  const std::string dir_;
  // Each attempt's index (Recover and Write only, which LogStore calls one at a time).
  std::map<Key, Index> indexes_;
};

}  // namespace dockyard
