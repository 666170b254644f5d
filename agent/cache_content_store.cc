#include "agent/cache_content_store.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/tar_io.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using namespace tar_io;  // NOLINT: this file is a user of the shared tar plumbing

// A temp file in the store's directory (so the final rename stays on one disk).
class TempFile {
 public:
  explicit TempFile(const std::string& dir) : path_(dir + "/.incoming-XXXXXX") { fd_ = ::mkstemp(path_.data()); }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!kept_) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  absl::Status Write(const char* data, size_t size) {
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError(errno, "cannot write", path_);
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }
  // Renames it to `target` (or drops it when `target` exists: same digest, same bytes).
  absl::Status MoveTo(const std::string& target) {
    ::close(fd_);
    fd_ = -1;
    if (::rename(path_.c_str(), target.c_str()) != 0) return ErrnoError(errno, "cannot rename", path_);
    kept_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool kept_ = false;
};

}  // namespace

CacheContentStore::CacheContentStore(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
}

std::string CacheContentStore::PathOf(const std::string& digest) const { return absl::StrCat(dir_, "/", digest); }

bool CacheContentStore::Has(const std::string& digest) const {
  struct stat st {};
  return IsSha256Hex(digest) && ::stat(PathOf(digest).c_str(), &st) == 0;
}

absl::Status CacheContentStore::Put(const std::string& digest, const std::string& bytes) {
  if (!IsSha256Hex(digest) || Sha256Hex(bytes) != digest) {
    return absl::DataLossError(absl::StrCat("cache content ", digest, " does not match its digest"));
  }
  if (Has(digest)) return absl::OkStatus();
  TempFile tmp(dir_);
  if (tmp.fd() < 0) return ErrnoError(errno, "cannot create a file in", dir_);
  RETURN_IF_ERROR(tmp.Write(bytes.data(), bytes.size()));
  return tmp.MoveTo(PathOf(digest));
}

absl::Status CacheContentStore::Adopt(const std::string& digest, const std::string& path) {
  absl::StatusOr<std::string> actual = Sha256OfFile(path);
  if (!actual.ok()) return actual.status();
  if (!IsSha256Hex(digest) || *actual != digest) {
    std::remove(path.c_str());
    return absl::DataLossError(absl::StrCat("cache content ", digest, " does not match its digest (got ", *actual,
                                            ")"));
  }
  if (::rename(path.c_str(), PathOf(digest).c_str()) != 0) return ErrnoError(errno, "cannot rename", path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> CacheContentStore::Directory(const std::string& digest) const {
  if (!Has(digest)) return absl::NotFoundError(absl::StrCat("cache directory ", digest, " is not on this agent"));
  return ReadFileToString(PathOf(digest));
}

absl::StatusOr<SnapshotTree> CacheContentStore::Take(const std::string& tar_path,
                                                     std::vector<std::string>* skipped) {
  ASSIGN_OR_RETURN(ArchiveReader r, OpenReader(tar_path));
  SnapshotBuilder builder;
  std::map<std::string, std::pair<std::string, int64_t>> by_path;  // for hard links: path -> digest, size
  archive_entry* e = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (Failed(rc)) return ReadError(r.get(), tar_path);
    ASSIGN_OR_RETURN(std::string name, CleanEntryName(PathnameOf(e)));
    // Drop the first component: the mount directory itself.
    const size_t slash = name.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = name.substr(slash + 1);
    const auto mode = static_cast<uint32_t>(archive_entry_perm(e));
    const auto uid = static_cast<uint32_t>(archive_entry_uid(e));
    const auto gid = static_cast<uint32_t>(archive_entry_gid(e));
    absl::Status added;
    if (const std::string link = HardlinkOf(e); !link.empty()) {
      ASSIGN_OR_RETURN(std::string target, CleanEntryName(link));
      auto it = by_path.find(target.substr(target.find('/') + 1));
      if (it == by_path.end()) {
        skipped->push_back(path);
        continue;
      }
      added = builder.AddFile(path, it->second.first, it->second.second, mode, uid, gid);
    } else if (archive_entry_filetype(e) == AE_IFDIR) {
      added = builder.AddDirectory(path, mode, uid, gid);
    } else if (archive_entry_filetype(e) == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      added = builder.AddSymlink(path, target == nullptr ? "" : target, uid, gid);
      if (!added.ok()) {
        skipped->push_back(path);
        continue;
      }
    } else if (archive_entry_filetype(e) == AE_IFREG) {
      TempFile tmp(dir_);
      if (tmp.fd() < 0) return ErrnoError(errno, "cannot create a file in", dir_);
      Sha256 hash;
      int64_t size = 0;
      char buf[kBufferSize];
      for (;;) {
        const la_ssize_t n = archive_read_data(r.get(), buf, sizeof buf);
        if (n < 0) return ReadError(r.get(), tar_path);
        if (n == 0) break;
        hash.Update(std::string_view(buf, static_cast<size_t>(n)));
        RETURN_IF_ERROR(tmp.Write(buf, static_cast<size_t>(n)));
        size += n;
      }
      const std::string digest = hash.HexDigest();
      if (!Has(digest)) {
        RETURN_IF_ERROR(tmp.MoveTo(PathOf(digest)));
      } else {
        ::utimensat(AT_FDCWD, PathOf(digest).c_str(), nullptr, 0);  // used again
      }
      by_path[path] = {digest, size};
      added = builder.AddFile(path, digest, size, mode, uid, gid);
    } else {
      skipped->push_back(path);
      continue;
    }
    if (!added.ok()) return added;
  }
  SnapshotTree tree = builder.Finish();
  for (const auto& [digest, bytes] : tree.directories) RETURN_IF_ERROR(Put(digest, bytes));
  return tree;
}

absl::Status CacheContentStore::WriteRestoreTar(const std::string& root, const std::string& out_tar) const {
  AtomicFile out(out_tar);
  RETURN_IF_ERROR(out.Open());
  ASSIGN_OR_RETURN(ArchiveWriter w, OpenWriter(out.fd(), out_tar));
  absl::Status failed;
  absl::Status walked = WalkSnapshot(
      root, [&](const std::string& digest) { return Directory(digest); },
      [&](const std::string& path, const v1::SnapshotEntry& entry) {
        if (!failed.ok()) return;
        Entry header(archive_entry_new());
        archive_entry_set_pathname(header.get(), path.c_str());
        archive_entry_set_uid(header.get(), entry.uid());
        archive_entry_set_gid(header.get(), entry.gid());
        archive_entry_set_mtime(header.get(), 0, 0);
        std::ifstream in;
        if (entry.kind() == v1::SnapshotEntry::DIRECTORY) {
          archive_entry_set_filetype(header.get(), AE_IFDIR);
          archive_entry_set_perm(header.get(), entry.mode());
        } else if (entry.kind() == v1::SnapshotEntry::SYMLINK) {
          archive_entry_set_filetype(header.get(), AE_IFLNK);
          archive_entry_set_perm(header.get(), 0777);
          archive_entry_set_symlink(header.get(), entry.target().c_str());
        } else {
          in.open(PathOf(entry.digest()), std::ios::binary);
          ::utimensat(AT_FDCWD, PathOf(entry.digest()).c_str(), nullptr, 0);  // used again
          if (!in) {
            failed = absl::DataLossError(absl::StrCat("cache file ", entry.digest(), " (", path, ") is missing"));
            return;
          }
          archive_entry_set_filetype(header.get(), AE_IFREG);
          archive_entry_set_perm(header.get(), entry.mode());
          archive_entry_set_size(header.get(), entry.size());
        }
        if (Failed(archive_write_header(w.get(), header.get()))) {
          failed = WriteError(w.get(), out_tar);
          return;
        }
        if (entry.kind() != v1::SnapshotEntry::FILE) return;
        // Checked while copied: a file changed on this disk never reaches a volume.
        Sha256 hash;
        int64_t size = 0;
        char buf[kBufferSize];
        while (in.read(buf, sizeof buf) || in.gcount() > 0) {
          const auto n = static_cast<size_t>(in.gcount());
          hash.Update(std::string_view(buf, n));
          size += static_cast<int64_t>(n);
          if (archive_write_data(w.get(), buf, n) < 0) {
            failed = WriteError(w.get(), out_tar);
            return;
          }
        }
        if (size != entry.size() || hash.HexDigest() != entry.digest()) {
          failed = absl::DataLossError(
              absl::StrCat("cache file ", entry.digest(), " (", path, ") does not match its digest"));
        }
      });
  RETURN_IF_ERROR(walked);
  RETURN_IF_ERROR(failed);
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out_tar);
  return out.Commit();
}

int64_t CacheContentStore::Trim(int64_t max_bytes) { return TrimDirectory(dir_, max_bytes); }

}  // namespace dockyard
