// libarchive plumbing the tar code shares (common/tar_archive, the agent's cache
// snapshots): owners for archives and entries, atomic output files, readers and
// writers with Dockyard's settings, and entry-name checks. Not an API of its own.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dockyard::tar_io {

inline constexpr size_t kBufferSize = 1 << 16;

struct ReadArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteArchiveFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReader = std::unique_ptr<archive, ReadArchiveFree>;
using ArchiveWriter = std::unique_ptr<archive, WriteArchiveFree>;
using Entry = std::unique_ptr<archive_entry, EntryFree>;

absl::Status ErrnoError(int err, absl::string_view what, absl::string_view path);
std::string ArchiveMessage(archive* a);
// libarchive's ARCHIVE_WARN (e.g. a name it could not convert to UTF-8) still
// produces a usable entry, so only worse results fail.
bool Failed(int r);

// Writes to `path.tmp` and renames onto `path` only on Commit(), so a crash or an
// error never leaves a truncated tar where a complete one is expected.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {}
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  absl::Status Open() {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoError(errno, "cannot create", tmp_);
    return absl::OkStatus();
  }
  int fd() const { return fd_; }

  absl::Status Commit() {
    if (::fsync(fd_) != 0) return ErrnoError(errno, "cannot sync", tmp_);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoError(errno, "cannot close", tmp_);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return ErrnoError(errno, "cannot rename", tmp_);
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// pax_restricted: plain ustar headers, a pax header only for what ustar cannot hold.
absl::StatusOr<ArchiveWriter> OpenWriter(int fd, absl::string_view path);
absl::StatusOr<ArchiveReader> OpenReader(const std::string& path);
// A tar read from `fd` as it arrives (a pipe or socket; not closed). `what` names it in errors.
absl::StatusOr<ArchiveReader> OpenStreamReader(int fd, absl::string_view what);
absl::Status ReadError(archive* r, absl::string_view path);
absl::Status WriteError(archive* w, absl::string_view path);
// The name as stored, or its UTF-8 form when the C locale cannot represent it.
std::string PathnameOf(archive_entry* e);
std::string HardlinkOf(archive_entry* e);
// Turns a stored name into a relative path without "./" or trailing "/"; refuses
// names that would land outside the directory they are extracted to.
absl::StatusOr<std::string> CleanEntryName(absl::string_view name);
// Copies the current entry's data from `r` to `w`.
absl::Status CopyData(archive* r, absl::string_view in_path, archive* w, absl::string_view out_path);

}  // namespace dockyard::tar_io
