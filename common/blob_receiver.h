// Receiving a content-addressed blob over gRPC into a file: written to a temp file
// beside the destination, checked against the expected sha256 (and size, when
// known), then renamed into place, so a cut or corrupt transfer leaves nothing there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/support/sync_stream.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/retrier.h"
#include "dockyard/v1/blob.pb.h"

namespace dockyard {

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
