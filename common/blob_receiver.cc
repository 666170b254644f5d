#include "common/blob_receiver.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

// Where linkat can name an open file: without /proc (some sandboxes) a named temp
// file is used instead. Asked once per process, not per file.
bool CanLinkOpenFiles() {
  static const bool can = ::access("/proc/self/fd", X_OK) == 0;
  return can;
}

}  // namespace

ReceivedFile::ReceivedFile(std::string dest) : dest_(std::move(dest)) {
  const std::string dir = std::filesystem::path(dest_).parent_path().string();
  if (CanLinkOpenFiles()) fd_ = ::open(dir.empty() ? "." : dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (fd_ < 0) {  // a file system without O_TMPFILE, or no /proc
    tmp_ = absl::StrCat(dest_, ".part.", ::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) error_ = ErrnoInternal(absl::StrCat("cannot write ", tmp_));
  }
}

ReceivedFile::~ReceivedFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void ReceivedFile::Append(std::string_view data) {
  hash_.Update(data);
  received_ += static_cast<int64_t>(data.size());
  while (error_.ok() && !data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error_ = ErrnoInternal(absl::StrCat("cannot write ", dest_));
    if (n > 0) data.remove_prefix(static_cast<size_t>(n));
  }
}

absl::Status ReceivedFile::Commit(const std::string& sha256, int64_t size) {
  RETURN_IF_ERROR(error_);
  const std::string got = hash_.HexDigest();
  if (got != sha256 || (size >= 0 && received_ != size)) {
    return absl::DataLossError(absl::StrCat(dest_, ": got ", received_, " bytes with sha256 ", got, ", expected ",
                                            size >= 0 ? absl::StrCat(size, " bytes with ") : "", "sha256 ", sha256));
  }
  RETURN_IF_ERROR(LinkIntoPlace());
  committed_ = true;
  return absl::OkStatus();
}

absl::Status ReceivedFile::LinkIntoPlace() {
  const std::string open_file = absl::StrCat("/proc/self/fd/", fd_);
  if (tmp_.empty() && ::linkat(AT_FDCWD, open_file.c_str(), AT_FDCWD, dest_.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    return absl::OkStatus();
  }
  if (tmp_.empty()) {
    if (errno != EEXIST) return ErrnoInternal(dest_);
    // Something is there already: name the file beside it, then replace it in one step.
    tmp_ = absl::StrCat(dest_, ".part.", ::getpid());
    ::unlink(tmp_.c_str());
    if (::linkat(AT_FDCWD, open_file.c_str(), AT_FDCWD, tmp_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      const absl::Status st = ErrnoInternal(dest_);
      tmp_.clear();
      return st;
    }
  }
  if (::rename(tmp_.c_str(), dest_.c_str()) != 0) return ErrnoInternal(dest_);
  return absl::OkStatus();
}

absl::Status ReceiveBlob(grpc::ClientReaderInterface<v1::BlobChunk>& reader, const std::string& dest,
                         const std::string& sha256, int64_t size,
                         const std::function<void(int64_t)>& on_progress) {
  ReceivedFile file(dest);
  v1::BlobChunk chunk;
  while (reader.Read(&chunk)) {
    file.Append(chunk.data());
    if (on_progress) on_progress(file.received());
  }
  const grpc::Status status = reader.Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  return file.Commit(sha256, size);
}

absl::StatusOr<int64_t> FetchBlob(const BlobDownload& open, const std::string& dest, const std::string& sha256,
                                  int64_t size, const RetryPolicy& policy) {
  int64_t received = 0;
  absl::Status result;
  // A cut transfer is tried again whole: ReceiveBlob leaves nothing behind.
  absl::Status status = Retrier(policy).Run([&](grpc::ClientContext& context) -> grpc::Status {
    auto reader = open(context);
    result = ReceiveBlob(*reader, dest, sha256, size, [&](int64_t bytes) { received = bytes; });
    return ToGrpcStatus(result);
  });
  if (absl::IsDataLoss(result)) return result;
  if (!status.ok()) return status;
  return received;
}

}  // namespace dockyard
