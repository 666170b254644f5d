#include "controller/file_blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

class FileWriter final : public BlobStore::Writer {
 public:
  FileWriter(int fd, std::string tmp_path, std::string final_path, std::string sha256, int64_t size)
      : fd_(fd), tmp_path_(std::move(tmp_path)), final_path_(std::move(final_path)),
        want_sha256_(std::move(sha256)), want_size_(size) {}

  ~FileWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
  }

  absl::Status Append(std::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError("blob writer is closed");
    if (written_ + static_cast<int64_t>(data.size()) > want_size_) {
      return absl::DataLossError(absl::StrCat("blob ", want_sha256_, " is larger than the announced ",
                                              want_size_, " bytes"));
    }
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno(tmp_path_);
      done += static_cast<size_t>(n);
    }
    hash_.Update(data);
    written_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (fd_ < 0) return absl::FailedPreconditionError("blob writer is closed");
    const bool synced = ::fsync(fd_) == 0;
    ::close(fd_);
    fd_ = -1;
    if (!synced) return Errno(tmp_path_);
    if (written_ != want_size_) {
      return absl::DataLossError(absl::StrCat("blob ", want_sha256_, ": got ", written_,
                                              " bytes, announced ", want_size_));
    }
    const std::string got = hash_.HexDigest();
    if (got != want_sha256_) {
      return absl::DataLossError(absl::StrCat("blob announced as sha256 ", want_sha256_,
                                              " has sha256 ", got));
    }
    std::error_code ec;
    fs::create_directories(fs::path(final_path_).parent_path(), ec);
    if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) return Errno(final_path_);
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  int fd_;
  const std::string tmp_path_;
  const std::string final_path_;
  const std::string want_sha256_;
  const int64_t want_size_;
  int64_t written_ = 0;
  Sha256 hash_;
  bool committed_ = false;
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
  return std::unique_ptr<FileBlobStore>(new FileBlobStore(dir));
}

std::string FileBlobStore::PathOf(const std::string& sha256) const {
  return absl::StrCat(dir_, "/sha256/", sha256.substr(0, 2), "/", sha256);
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> FileBlobStore::NewWriter(const std::string& sha256,
                                                                             int64_t size) {
  if (absl::Status st = CheckDigest(sha256); !st.ok()) return st;
  if (size < 0) return absl::InvalidArgumentError("negative blob size");
  std::string tmp = absl::StrCat(dir_, "/tmp/", sha256, ".", ::getpid(), ".", next_tmp_++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(tmp);
  return std::unique_ptr<Writer>(new FileWriter(fd, tmp, PathOf(sha256), sha256, size));
}

bool FileBlobStore::Contains(const std::string& sha256) {
  struct stat st;
  return IsSha256Hex(sha256) && ::stat(PathOf(sha256).c_str(), &st) == 0;
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
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat("no blob ", sha256)) : Errno(path);
  }
  std::string out(static_cast<size_t>(max_bytes), '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), offset);
  ::close(fd);
  if (n < 0) return Errno(path);
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace dockyard
