#include "controller/file_log_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

// One .idx record: the piece's sequence number (-1 for a system line) and the log's
// size once the piece is in, as two int64 in host byte order.
constexpr int64_t kIndexRecord = 16;

// Writes all of `data` at `offset`.
bool WriteAt(int fd, std::string_view data, int64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<int64_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The whole file, or "" when it cannot be read.
std::string ReadWhole(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string FileLogBackend::PathOf(const v1::StageRef& ref) const {
  return absl::StrCat(dir_, "/", ref.run_id(), "/", ref.stage(), ".", ref.attempt(), ".log");
}

std::string FileLogBackend::IndexPathOf(const v1::StageRef& ref) const {
  return absl::StrCat(dir_, "/", ref.run_id(), "/", ref.stage(), ".", ref.attempt(), ".idx");
}

absl::StatusOr<LogBackend::Recovered> FileLogBackend::Recover(const v1::StageRef& ref) {
  Recovered recovered;
  const std::string path = PathOf(ref);
  const std::string index_path = IndexPathOf(ref);
  struct stat st;
  const int64_t log_size = ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
  Index& index_state = indexes_[Key{ref.run_id(), ref.stage(), ref.attempt()}];
  if (::stat(index_path.c_str(), &st) != 0) {
    // No agent chunk yet: the log holds whole system lines; a torn last one goes.
    const std::string log = ReadWhole(path);
    const size_t last_line_end = log.rfind('\n');
    recovered.size = last_line_end == std::string::npos ? 0 : static_cast<int64_t>(last_line_end) + 1;
    index_state = Index{};
    if (log_size > recovered.size && ::truncate(path.c_str(), recovered.size) != 0) { /* best effort */ }
    return recovered;
  }
  const std::string index = ReadWhole(index_path);
  // Walk the complete records; stop at one whose data did not make it to the log.
  int64_t records = 0;
  for (int64_t at = 0; at + kIndexRecord <= static_cast<int64_t>(index.size()); at += kIndexRecord) {
    int64_t seq = 0;
    int64_t end = 0;
    std::memcpy(&seq, index.data() + at, sizeof seq);
    std::memcpy(&end, index.data() + at + sizeof seq, sizeof end);
    if (end < recovered.size || end > log_size) break;
    recovered.size = end;
    if (seq >= 0) recovered.next_seq = seq + 1;
    ++records;
  }
  const int64_t index_size = records * kIndexRecord;
  index_state = Index{true, index_size};
  // Drop what no record covers: a torn chunk (its sender never got an ack and sends
  // it again) or a torn index record. Writes go at the known offsets either way, so
  // a failed truncate only leaves bytes past the end that readers never see.
  if (log_size > recovered.size && ::truncate(path.c_str(), recovered.size) != 0) { /* best effort */ }
  if (static_cast<int64_t>(index.size()) > index_size && ::truncate(index_path.c_str(), index_size) != 0) {
    /* best effort */
  }
  return recovered;
}

absl::Status FileLogBackend::Write(const v1::StageRef& ref, int64_t seq, int64_t offset, std::string_view data) {
  const std::string path = PathOf(ref);
  Index& index = indexes_[Key{ref.run_id(), ref.stage(), ref.attempt()}];
  if (offset == 0) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  }
  // Single system lines need no index (Recover keeps whole lines): an attempt that
  // prints nothing then costs one file, not two. Anything else starts the index
  // before its data goes in.
  const bool one_line = !data.empty() && data.find('\n') == data.size() - 1;
  const bool indexed = index.exists || seq >= 0 || !one_line;
  if (indexed && !index.exists) RETURN_IF_ERROR(StartIndex(ref, index, offset));
  // At the known offsets rather than O_APPEND: whatever a failed write left past
  // them is overwritten, never built upon.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoInternal(path);
  if (!WriteAt(fd, data, offset)) {
    absl::Status st = ErrnoInternal(path);
    // Keep the file at the size we know, so a retry appends at a clean boundary.
    if (::ftruncate(fd, offset) != 0) { /* best effort */ }
    ::close(fd);
    return st;
  }
  const int64_t end = offset + static_cast<int64_t>(data.size());
  if (!indexed) {
    ::close(fd);
    return absl::OkStatus();
  }
  // The index record goes second: a complete record always covers data on disk.
  char record[kIndexRecord];
  std::memcpy(record, &seq, sizeof seq);
  std::memcpy(record + sizeof seq, &end, sizeof end);
  const std::string index_path = IndexPathOf(ref);
  int index_fd = ::open(index_path.c_str(), O_WRONLY | O_CLOEXEC);
  if (index_fd < 0 || !WriteAt(index_fd, std::string_view(record, sizeof record), index.size)) {
    absl::Status st = ErrnoInternal(index_path);
    if (index_fd >= 0) {
      if (::ftruncate(index_fd, index.size) != 0) { /* best effort */ }
      ::close(index_fd);
    }
    if (::ftruncate(fd, offset) != 0) { /* best effort */ }
    ::close(fd);
    return st;
  }
  ::close(index_fd);
  ::close(fd);
  index.size += kIndexRecord;
  return absl::OkStatus();
}

absl::Status FileLogBackend::StartIndex(const v1::StageRef& ref, Index& index, int64_t covered) {
  const std::string index_path = IndexPathOf(ref);
  // One record for the system lines already in the log, and the file appears with it
  // (renamed into place): a crash never leaves an index that disowns them.
  std::string record;
  if (covered > 0) {
    const int64_t seq = -1;
    record.resize(kIndexRecord);
    std::memcpy(record.data(), &seq, sizeof seq);
    std::memcpy(record.data() + sizeof seq, &covered, sizeof covered);
  }
  const std::string temp_path = absl::StrCat(index_path, ".new");
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoInternal(temp_path);
  const bool written = WriteAt(fd, record, 0);
  ::close(fd);
  if (!written || ::rename(temp_path.c_str(), index_path.c_str()) != 0) {
    absl::Status st = ErrnoInternal(index_path);
    ::unlink(temp_path.c_str());
    return st;
  }
  index = Index{true, static_cast<int64_t>(record.size())};
  return absl::OkStatus();
}

absl::Status FileLogBackend::RemoveRun(const std::string& run_id) {
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(dir_, "/", run_id), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove the logs of run ", run_id, ": ", ec.message()));
  std::erase_if(indexes_, [&](const auto& entry) { return std::get<0>(entry.first) == run_id; });
  return absl::OkStatus();
}

absl::StatusOr<std::string> FileLogBackend::Read(const v1::StageRef& ref, int64_t offset, int64_t max_bytes,
                                                 int64_t size) {
  std::string data;
  const int64_t want = std::min(max_bytes, size - offset);
  if (want <= 0) return data;
  const std::string path = PathOf(ref);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoInternal(path);
  data.resize(static_cast<size_t>(want));
  ssize_t n = ::pread(fd, data.data(), data.size(), offset);
  ::close(fd);
  if (n < 0) return ErrnoInternal(path);
  data.resize(static_cast<size_t>(n));
  return data;
}

}  // namespace dockyard
