#include "common/blob_receiver.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/sha256.h"

namespace dockyard {

absl::Status ReceiveBlob(grpc::ClientReaderInterface<v1::BlobChunk>& reader, const std::string& dest,
                         const std::string& sha256, int64_t size,
                         const std::function<void(int64_t)>& on_progress) {
  const std::string tmp = absl::StrCat(dest, ".part.", ::getpid());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  Sha256 hash;
  int64_t received = 0;
  v1::BlobChunk chunk;
  while (reader.Read(&chunk)) {
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    hash.Update(chunk.data());
    received += static_cast<int64_t>(chunk.data().size());
    if (on_progress) on_progress(received);
  }
  out.close();
  const grpc::Status status = reader.Finish();
  std::error_code ec;
  if (!status.ok() || !out) {
    std::filesystem::remove(tmp, ec);
    return status.ok() ? absl::InternalError(absl::StrCat("cannot write ", tmp)) : FromGrpcStatus(status);
  }
  const std::string got = hash.HexDigest();
  if (got != sha256 || (size >= 0 && received != size)) {
    std::filesystem::remove(tmp, ec);
    return absl::DataLossError(absl::StrCat(dest, ": got ", received, " bytes with sha256 ", got, ", expected ",
                                            size >= 0 ? absl::StrCat(size, " bytes with ") : "", "sha256 ", sha256));
  }
  std::filesystem::rename(tmp, dest, ec);
  if (ec) return absl::InternalError(absl::StrCat(dest, ": ", ec.message()));
  return absl::OkStatus();
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
