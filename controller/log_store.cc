#include "controller/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace dockyard {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

LogStore::LogStore(std::string dir) : dir_(std::move(dir)) {}

std::string LogStore::PathOf(const v1::StageRef& ref) const {
  return absl::StrCat(dir_, "/", ref.run_id(), "/", ref.stage(), ".", ref.attempt(), ".log");
}

LogStore::Attempt& LogStore::Load(const v1::StageRef& ref) {
  Key key{ref.run_id(), ref.stage(), ref.attempt()};
  auto it = attempts_.find(key);
  if (it != attempts_.end()) return it->second;
  Attempt& attempt = attempts_[key];
  struct stat st;
  if (::stat(PathOf(ref).c_str(), &st) == 0) attempt.size = st.st_size;
  return attempt;
}

absl::Status LogStore::Write(const v1::StageRef& ref, Attempt& attempt, std::string_view data) {
  const std::string path = PathOf(ref);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = Errno(path);
      // Keep the file at the size we know, so a retry appends at a clean boundary.
      if (::ftruncate(fd, attempt.size) != 0) { /* best effort */ }
      ::close(fd);
      return st;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  attempt.size += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LogStore::Append(const v1::StageRef& ref, int64_t seq, std::string_view data) {
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
  if (absl::Status st = Write(ref, attempt, data); !st.ok()) return st;
  return ++attempt.next_seq;
}

int64_t LogStore::NextSeq(const v1::StageRef& ref) {
  absl::MutexLock lock(&mu_);
  return Load(ref).next_seq;
}

absl::Status LogStore::AppendSystemLine(const v1::StageRef& ref, std::string_view line) {
  absl::MutexLock lock(&mu_);
  Attempt& attempt = Load(ref);
  if (attempt.closed) return absl::OkStatus();
  return Write(ref, attempt, absl::StrCat("[dockyard] ", absl::string_view(line.data(), line.size()), "\n"));
}

void LogStore::Close(const v1::StageRef& ref) {
  absl::MutexLock lock(&mu_);
  Load(ref).closed = true;
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
