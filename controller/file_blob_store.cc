#include "controller/file_blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

// A blob being written is handed to writeback in pieces of this size.
constexpr int64_t kWritebackBytes = 8 << 20;

// Partial uploads nobody came back for within this long are removed at start.
constexpr auto kPartialLifetime = std::chrono::hours(24);

class FileWriter final : public BlobStore::Writer {
 public:
  // `keep` (resumable): an uncommitted file stays for a later writer, unless its
  // content proved wrong. `on_close` runs once the writer is done with the file.
  FileWriter(const FileBlobStore* store, int fd, std::string tmp_path, std::string sha256, int64_t size,
             bool keep = false, std::function<void()> on_close = nullptr)
      : store_(store), fd_(fd), tmp_path_(std::move(tmp_path)), want_sha256_(std::move(sha256)), want_size_(size),
        keep_(keep), on_close_(std::move(on_close)) {}

  ~FileWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && (!keep_ || bad_)) ::unlink(tmp_path_.c_str());
    if (on_close_) on_close_();
  }

  // Takes the first `offset` bytes already in the file as written (hashing them).
  absl::Status Resume(int64_t offset) {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoInternal(tmp_path_);
    if (st.st_size != offset) {
      return absl::FailedPreconditionError(absl::StrCat("the controller holds ", st.st_size, " bytes of blob ",
                                                        want_sha256_, ", not ", offset, ": resume from there"));
    }
    std::string buf(1 << 20, '\0');
    while (written_ < offset) {
      const ssize_t n = ::pread(fd_, buf.data(), buf.size(), written_);
      if (n <= 0) return ErrnoInternal(tmp_path_);
      hash_.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
      written_ += n;
    }
    if (::lseek(fd_, offset, SEEK_SET) < 0) return ErrnoInternal(tmp_path_);
    return absl::OkStatus();
  }

  absl::Status Append(std::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError("blob writer is closed");
    if (written_ + static_cast<int64_t>(data.size()) > want_size_) {
      bad_ = true;
      return absl::DataLossError(absl::StrCat("blob ", want_sha256_, " is larger than the announced ",
                                              want_size_, " bytes"));
    }
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoInternal(tmp_path_);
      done += static_cast<size_t>(n);
    }
    hash_.Update(data);
    written_ += static_cast<int64_t>(data.size());
    // Start writing back what came so far, without waiting for it: the fsync at the
    // commit then finds little left to do instead of the whole blob.
    if (written_ - flushed_ >= kWritebackBytes) {
      (void)::sync_file_range(fd_, flushed_, written_ - flushed_, SYNC_FILE_RANGE_WRITE);
      flushed_ = written_;
    }
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    RETURN_IF_ERROR(Close("", /*sync=*/true));
    return Publish();
  }

  absl::Status Seal(const std::string& sha256) override { return Close(sha256, /*sync=*/false); }

  const std::string& tmp_path() const { return tmp_path_; }

  // After Close: moves the verified data into place.
  absl::Status Publish() {
    if (!sealed_ || committed_) return absl::FailedPreconditionError("blob writer is not sealed");
    const std::string final_path = store_->PathOf(want_sha256_);
    std::error_code ec;
    fs::create_directories(fs::path(final_path).parent_path(), ec);
    if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) return ErrnoInternal(final_path);
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  // Closes the data and checks it against what was announced (or `sha256`).
  absl::Status Close(const std::string& sha256, bool sync) {
    if (fd_ < 0) return absl::FailedPreconditionError("blob writer is closed");
    if (!sha256.empty()) {
      if (!IsSha256Hex(sha256) || (!want_sha256_.empty() && sha256 != want_sha256_)) {
        bad_ = true;
        return absl::DataLossError(absl::StrCat("blob announced as sha256 ", want_sha256_.empty() ? sha256 : want_sha256_,
                                                " ended as ", sha256));
      }
      want_sha256_ = sha256;
    }
    const bool synced = !sync || ::fsync(fd_) == 0;
    ::close(fd_);
    fd_ = -1;
    if (!synced) return ErrnoInternal(tmp_path_);
    if (written_ != want_size_) {
      bad_ = written_ > want_size_;
      return absl::DataLossError(absl::StrCat("blob ", want_sha256_, ": got ", written_,
                                              " bytes, announced ", want_size_));
    }
    const std::string got = hash_.HexDigest();
    if (got != want_sha256_) {
      bad_ = true;
      return absl::DataLossError(absl::StrCat("blob announced as sha256 ", want_sha256_,
                                              " has sha256 ", got));
    }
    sealed_ = true;
    return absl::OkStatus();
  }

  const FileBlobStore* store_;
  int fd_;
  const std::string tmp_path_;
  std::string want_sha256_;
  const int64_t want_size_;
  const bool keep_;
  std::function<void()> on_close_;
  int64_t written_ = 0;
  int64_t flushed_ = 0;  // writeback started up to here
  Sha256 hash_;
  bool sealed_ = false;
  bool committed_ = false;
  bool bad_ = false;  // what was written cannot become the blob: never keep it
};

absl::Status CheckDigest(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", sha256, "\" is not a sha256 hex digest"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileBlobStore>> FileBlobStore::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir + "/sha256", ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
  // Uploads that never committed (a crash, a cut connection) leave temp files.
  fs::remove_all(dir + "/tmp", ec);
  fs::create_directories(dir + "/tmp", ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, "/tmp: ", ec.message()));
  fs::create_directories(dir + "/partial", ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, "/partial: ", ec.message()));
  const auto now = fs::file_time_type::clock::now();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir + "/partial", ec)) {
    if (now - entry.last_write_time(ec) > kPartialLifetime) fs::remove(entry.path(), ec);
  }
  return std::unique_ptr<FileBlobStore>(new FileBlobStore(dir));
}

std::string FileBlobStore::PathOf(const std::string& sha256) const {
  return absl::StrCat(dir_, "/sha256/", sha256.substr(0, 2), "/", sha256);
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> FileBlobStore::NewWriter(const std::string& sha256,
                                                                             int64_t size) {
  if (!sha256.empty()) RETURN_IF_ERROR(CheckDigest(sha256));
  if (size < 0) return absl::InvalidArgumentError("negative blob size");
  std::string tmp = absl::StrCat(dir_, "/tmp/", sha256.empty() ? "streamed" : sha256, ".", ::getpid(), ".", next_tmp_++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoInternal(tmp);
  return std::unique_ptr<Writer>(new FileWriter(this, fd, tmp, sha256, size));
}

absl::Status FileBlobStore::PublishAll(std::vector<std::unique_ptr<Writer>> sealed) {
  if (sealed.empty()) return absl::OkStatus();
  // One file is flushed alone; a batch with one flush of the file system (its temp
  // files and the blobs share it), which costs one journal commit instead of many.
  const std::string what = sealed.size() == 1 ? static_cast<FileWriter*>(sealed[0].get())->tmp_path() : dir_ + "/tmp";
  const int fd = ::open(what.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoInternal(what);
  const bool synced = (sealed.size() == 1 ? ::fsync(fd) : ::syncfs(fd)) == 0;
  ::close(fd);
  if (!synced) return ErrnoInternal(what);
  for (std::unique_ptr<Writer>& writer : sealed) {
    RETURN_IF_ERROR(static_cast<FileWriter*>(writer.get())->Publish());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> FileBlobStore::NewResumableWriter(const std::string& sha256,
                                                                                      int64_t size, int64_t offset) {
  if (absl::Status st = CheckDigest(sha256); !st.ok()) return st;
  if (size < 0 || offset < 0 || offset > size) {
    return absl::InvalidArgumentError(absl::StrCat("bad blob size ", size, " or offset ", offset));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!resuming_.insert(sha256).second) {
      if (offset > 0) {
        return absl::UnavailableError(absl::StrCat("another upload of blob ", sha256, " is under way"));
      }
      return NewWriter(sha256, size);  // a concurrent fresh upload: its own temp file
    }
  }
  const std::string path = absl::StrCat(dir_, "/partial/", sha256);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0), 0644);
  if (fd < 0) {
    absl::Status st = ErrnoInternal(path);
    Release(sha256);
    return st;
  }
  auto writer = std::make_unique<FileWriter>(this, fd, path, sha256, size, /*keep=*/true,
                                             [this, sha256] { Release(sha256); });
  if (absl::Status st = writer->Resume(offset); !st.ok()) return st;
  return std::unique_ptr<Writer>(std::move(writer));
}

void FileBlobStore::Release(const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  resuming_.erase(sha256);
}

int64_t FileBlobStore::PartialSize(const std::string& sha256) {
  struct stat st;
  if (!IsSha256Hex(sha256) || ::stat(absl::StrCat(dir_, "/partial/", sha256).c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_size);
}

bool FileBlobStore::Contains(const std::string& sha256) {
  struct stat st;
  return IsSha256Hex(sha256) && ::stat(PathOf(sha256).c_str(), &st) == 0;
}

std::vector<BlobStore::Listed> FileBlobStore::List() {
  std::vector<Listed> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ + "/sha256", ec)) {
    const std::string name = entry.path().filename().string();
    struct stat st;
    if (!IsSha256Hex(name) || ::stat(entry.path().c_str(), &st) != 0) continue;
    out.push_back({name, static_cast<int64_t>(st.st_size), absl::TimeFromTimespec(st.st_mtim)});
  }
  return out;
}

absl::Status FileBlobStore::Remove(const std::string& sha256) {
  if (absl::Status st = CheckDigest(sha256); !st.ok()) return st;
  if (::unlink(PathOf(sha256).c_str()) != 0 && errno != ENOENT) {
    return ErrnoInternal(absl::StrCat("cannot remove blob ", sha256));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FileBlobStore::Size(const std::string& sha256) {
  if (absl::Status st = CheckDigest(sha256); !st.ok()) return st;
  struct stat st;
  if (::stat(PathOf(sha256).c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("no blob ", sha256));
  }
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<std::string> FileBlobStore::Read(const std::string& sha256, int64_t offset,
                                                int64_t max_bytes) {
  if (absl::Status st = CheckDigest(sha256); !st.ok()) return st;
  const std::string path = PathOf(sha256);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat("no blob ", sha256)) : ErrnoInternal(path);
  }
  std::string out(static_cast<size_t>(max_bytes), '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), offset);
  ::close(fd);
  if (n < 0) return ErrnoInternal(path);
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace dockyard
