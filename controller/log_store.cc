#include "controller/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

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

LogStore::LogStore(std::string dir) : dir_(std::move(dir)) {}

std::string LogStore::PathOf(const v1::StageRef& ref) const {
  return absl::StrCat(dir_, "/", ref.run_id(), "/", ref.stage(), ".", ref.attempt(), ".log");
}

std::string LogStore::IndexPathOf(const v1::StageRef& ref) const {
  return absl::StrCat(dir_, "/", ref.run_id(), "/", ref.stage(), ".", ref.attempt(), ".idx");
}

LogStore::Attempt& LogStore::Load(const v1::StageRef& ref) {
  Key key{ref.run_id(), ref.stage(), ref.attempt()};
  auto it = attempts_.find(key);
  if (it != attempts_.end()) return it->second;
  Attempt& attempt = attempts_[key];
  Recover(ref, attempt);
  return attempt;
}

void LogStore::Recover(const v1::StageRef& ref, Attempt& attempt) {
  const std::string path = PathOf(ref);
  const std::string index_path = IndexPathOf(ref);
  struct stat st;
  const int64_t log_size = ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
  const std::string index = ReadWhole(index_path);
  // Walk the complete records; stop at one whose data did not make it to the log.
  int64_t records = 0;
  for (int64_t at = 0; at + kIndexRecord <= static_cast<int64_t>(index.size()); at += kIndexRecord) {
    int64_t seq = 0;
    int64_t end = 0;
    std::memcpy(&seq, index.data() + at, sizeof seq);
    std::memcpy(&end, index.data() + at + sizeof seq, sizeof end);
    if (end < attempt.size || end > log_size) break;
    attempt.size = end;
    if (seq >= 0) attempt.next_seq = seq + 1;
    ++records;
  }
  attempt.index_size = records * kIndexRecord;
  // Drop what no record covers: a torn chunk (its sender never got an ack and sends
  // it again) or a torn index record. Writes go at the known offsets either way, so
  // a failed truncate only leaves bytes past the end that readers never see.
  if (log_size > attempt.size && ::truncate(path.c_str(), attempt.size) != 0) { /* best effort */ }
  if (static_cast<int64_t>(index.size()) > attempt.index_size &&
      ::truncate(index_path.c_str(), attempt.index_size) != 0) { /* best effort */ }
}

absl::Status LogStore::Write(const v1::StageRef& ref, Attempt& attempt, int64_t seq, std::string_view data) {
  const std::string path = PathOf(ref);
  const std::string index_path = IndexPathOf(ref);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // At the known offsets rather than O_APPEND: whatever a failed write left past
  // them is overwritten, never built upon.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(path);
  if (!WriteAt(fd, data, attempt.size)) {
    absl::Status st = Errno(path);
    // Keep the file at the size we know, so a retry appends at a clean boundary.
    if (::ftruncate(fd, attempt.size) != 0) { /* best effort */ }
    ::close(fd);
    return st;
  }
  const int64_t end = attempt.size + static_cast<int64_t>(data.size());
  // The index record goes second: a complete record always covers data on disk.
  char record[kIndexRecord];
  std::memcpy(record, &seq, sizeof seq);
  std::memcpy(record + sizeof seq, &end, sizeof end);
  int index_fd = ::open(index_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (index_fd < 0 || !WriteAt(index_fd, std::string_view(record, sizeof record), attempt.index_size)) {
    absl::Status st = Errno(index_path);
    if (index_fd >= 0) {
      if (::ftruncate(index_fd, attempt.index_size) != 0) { /* best effort */ }
      ::close(index_fd);
    }
    if (::ftruncate(fd, attempt.size) != 0) { /* best effort */ }
    ::close(fd);
    return st;
  }
  ::close(index_fd);
  ::close(fd);
  attempt.size = end;
  attempt.index_size += kIndexRecord;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LogStore::Append(const v1::StageRef& ref, int64_t seq, std::string_view data) {
  std::vector<std::function<void()>> wakes;
  absl::StatusOr<int64_t> next = [&]() -> absl::StatusOr<int64_t> {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    if (seq < attempt.next_seq) return attempt.next_seq;  // a resend of what we have
    if (attempt.closed) {
      return absl::FailedPreconditionError(absl::StrCat("log of ", ref.stage(), " attempt ",
                                                        ref.attempt(), " is closed"));
    }
    if (seq > attempt.next_seq) {
      return absl::FailedPreconditionError(
          absl::StrCat("log chunk ", seq, " arrived before chunk ", attempt.next_seq));
    }
    if (absl::Status st = Write(ref, attempt, seq, data); !st.ok()) return st;
    wakes = Ready(ref, attempt);
    return ++attempt.next_seq;
  }();
  WakeAll(std::move(wakes));
  return next;
}

int64_t LogStore::NextSeq(const v1::StageRef& ref) {
  absl::MutexLock lock(&mu_);
  return Load(ref).next_seq;
}

absl::Status LogStore::AppendSystemLine(const v1::StageRef& ref, std::string_view line) {
  std::vector<std::function<void()>> wakes;
  absl::Status written = [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    if (attempt.closed) return absl::OkStatus();
    // Indexed with seq -1: it has its place in the offsets but uses no sequence number.
    RETURN_IF_ERROR(Write(ref, attempt, -1, absl::StrCat("[dockyard] ", absl::string_view(line.data(), line.size()), "\n")));
    wakes = Ready(ref, attempt);
    return absl::OkStatus();
  }();
  WakeAll(std::move(wakes));
  return written;
}

void LogStore::Close(const v1::StageRef& ref) {
  std::vector<std::function<void()>> wakes;
  {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    attempt.closed = true;
    wakes = Ready(ref, attempt);
  }
  WakeAll(std::move(wakes));
}

uint64_t LogStore::Watch(const v1::StageRef& ref, int64_t offset, std::function<void()> wake) {
  {
    absl::MutexLock lock(&mu_);
    const Attempt& attempt = Load(ref);
    if (attempt.size <= offset && !attempt.closed) {
      const uint64_t id = ++last_waiter_;
      const Key key{ref.run_id(), ref.stage(), ref.attempt()};
      waiters_[key].emplace(id, Waiter{offset, std::move(wake)});
      waiter_keys_.emplace(id, key);
      return id;
    }
  }
  wake();
  return 0;
}

bool LogStore::Unwatch(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto key = waiter_keys_.find(id);
  if (key == waiter_keys_.end()) return false;
  auto waiters = waiters_.find(key->second);
  waiters->second.erase(id);
  if (waiters->second.empty()) waiters_.erase(waiters);
  waiter_keys_.erase(key);
  return true;
}

std::vector<std::function<void()>> LogStore::Ready(const v1::StageRef& ref, const Attempt& attempt) {
  std::vector<std::function<void()>> wakes;
  auto waiters = waiters_.find(Key{ref.run_id(), ref.stage(), ref.attempt()});
  if (waiters == waiters_.end()) return wakes;
  for (auto it = waiters->second.begin(); it != waiters->second.end();) {
    if (attempt.size > it->second.offset || attempt.closed) {
      wakes.push_back(std::move(it->second.wake));
      waiter_keys_.erase(it->first);
      it = waiters->second.erase(it);
    } else {
      ++it;
    }
  }
  if (waiters->second.empty()) waiters_.erase(waiters);
  return wakes;
}

void LogStore::WakeAll(std::vector<std::function<void()>> wakes) {
  for (auto& wake : wakes) wake();
}

absl::StatusOr<LogStore::Slice> LogStore::Read(const v1::StageRef& ref, int64_t offset,
                                               int64_t max_bytes) {
  Slice slice;
  {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    slice.size = attempt.size;
    slice.closed = attempt.closed;
  }
  if (offset < 0 || offset > slice.size) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is past the log's end (", slice.size, ")"));
  }
  const int64_t want = std::min(max_bytes, slice.size - offset);
  if (want == 0) return slice;
  const std::string path = PathOf(ref);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(path);
  slice.data.resize(static_cast<size_t>(want));
  ssize_t n = ::pread(fd, slice.data.data(), slice.data.size(), offset);
  ::close(fd);
  if (n < 0) return Errno(path);
  slice.data.resize(static_cast<size_t>(n));
  // Only bytes that were complete when we sampled the size are returned, so a
  // concurrent append never shows a torn chunk; `closed` applies to that size.
  if (n < want) slice.closed = false;
  return slice;
}

}  // namespace dockyard
