// Receiving a content-addressed blob over gRPC into a file: written to a file not
// yet in place, checked against the expected sha256 (and size, when known), then
// put in place, so a cut or corrupt transfer leaves nothing there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/support/sync_stream.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/retrier.h"
#include "common/sha256.h"
#include "dockyard/v1/blob.pb.h"

namespace dockyard {

// One file being received: written to a file with no name yet (O_TMPFILE; a named
// temp file beside `dest` where the file system cannot), then checked and linked
// into place by Commit. Dropped uncommitted, or killed midway, it leaves nothing
// behind. An unnamed file also keeps the directory's lock out of the way while
// many are written side by side: creating it takes no directory entry.
class ReceivedFile {
 public:
  explicit ReceivedFile(std::string dest);
  ~ReceivedFile();
  ReceivedFile(const ReceivedFile&) = delete;
  ReceivedFile& operator=(const ReceivedFile&) = delete;

  void Append(std::string_view data);
  int64_t received() const { return received_; }
  // DATA_LOSS (naming the file) when the content is not `sha256` of `size` bytes
  // (`size` < 0: unknown); INTERNAL when it could not be written. Replaces a file
  // already at `dest`.
  absl::Status Commit(const std::string& sha256, int64_t size);

 private:
  absl::Status LinkIntoPlace();

  const std::string dest_;
  std::string tmp_;  // the named temp file, if not O_TMPFILE
  int fd_ = -1;
  absl::Status error_;  // the first write error
  Sha256 hash_;
  int64_t received_ = 0;
  bool committed_ = false;
};

// Reads `reader` to its end and finishes it. `size` < 0 means unknown. DATA_LOSS
// when the content does not match; the stream's own error when it fails.
// `on_progress(bytes_so_far)` after each chunk, if given.
absl::Status ReceiveBlob(grpc::ClientReaderInterface<v1::BlobChunk>& reader, const std::string& dest,
                         const std::string& sha256, int64_t size,
                         const std::function<void(int64_t)>& on_progress = nullptr);

// Opens a download with `open` and receives it into `dest` as ReceiveBlob does,
// tried again (common/retrier) while the transport fails; content that does not
// match is DATA_LOSS at once. Returns the bytes received.
using BlobDownload = std::function<std::unique_ptr<grpc::ClientReaderInterface<v1::BlobChunk>>(grpc::ClientContext&)>;
absl::StatusOr<int64_t> FetchBlob(const BlobDownload& open, const std::string& dest, const std::string& sha256,
                                  int64_t size, const RetryPolicy& policy);

}  // namespace dockyard
