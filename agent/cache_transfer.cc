#include "agent/cache_transfer.h"

#include <sys/stat.h>

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/file_stream.h"
#include "common/blob_receiver.h"
#include "common/grpc_status.h"
#include "common/retrier.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

constexpr size_t kChunkBytes = 1 << 20;
// One question per this many digests keeps each message small.
constexpr int kAskBatch = 4096;

}  // namespace

absl::StatusOr<TransferCount> CacheTransfer::Publish(const SnapshotTree& tree) {
  std::vector<std::string> all;
  for (const auto& [digest, bytes] : tree.directories) all.push_back(digest);
  for (const auto& [digest, size] : tree.files) all.push_back(digest);
  TransferCount sent;
  for (size_t at = 0; at < all.size(); at += kAskBatch) {
    v1::MissingCacheBlobsRequest ask;
    for (size_t i = at; i < std::min(all.size(), at + kAskBatch); ++i) ask.add_digests(all[i]);
    v1::MissingCacheBlobsResponse missing;
    RETURN_IF_ERROR(Retrier().Run([&](grpc::ClientContext& context) {
      missing.Clear();
      return stub_->MissingCacheBlobs(&context, ask, &missing);
    }));
    for (const std::string& digest : missing.digests()) {
      ASSIGN_OR_RETURN(int64_t bytes, Upload(digest));
      ++sent.blobs;
      sent.bytes += bytes;
    }
  }
  return sent;
}

absl::StatusOr<int64_t> CacheTransfer::Upload(const std::string& digest) {
  const std::string path = store_->PathOf(digest);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cache content ", digest, " is not on this agent"));
  }
  absl::Status status = Retrier(TransferPolicy(absl::Minutes(30))).Run([&](grpc::ClientContext& context) -> grpc::Status {
    v1::UploadCacheBlobResponse response;
    auto writer = stub_->UploadCacheBlob(&context, &response);
    v1::UploadCacheBlobRequest request;
    request.mutable_header()->set_sha256(digest);
    request.mutable_header()->set_size(st.st_size);
    return StreamFile(*writer, request, path, 0, kChunkBytes);
  });
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("sending cache content ", digest, ": ", status.message()));
  }
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<int64_t> CacheTransfer::Download(const std::string& digest) {
  absl::MutexLock lock(&download_mu_);
  if (store_->Has(digest)) return 0;  // another stage brought it meanwhile
  v1::FetchCacheBlobRequest request;
  request.set_digest(digest);
  auto fetched = FetchBlob([&](grpc::ClientContext& c) { return stub_->FetchCacheBlob(&c, request); },
                           store_->PathOf(digest), digest, /*size=*/-1, TransferPolicy(absl::Minutes(30)));
  if (absl::IsDataLoss(fetched.status())) {
    return absl::DataLossError(absl::StrCat("cache content ", digest,
                                            " from the controller does not match its digest: not used"));
  }
  if (!fetched.ok()) {
    return absl::Status(fetched.status().code(),
                        absl::StrCat("fetching cache content ", digest, ": ", fetched.status().message()));
  }
  return *fetched;
}

absl::StatusOr<TransferCount> CacheTransfer::Fetch(const std::string& root) {
  TransferCount got;
  std::set<std::string> files;
  // Directory by directory (each checked by WalkSnapshot), then the files they name.
  auto directory = [&](const std::string& digest) -> absl::StatusOr<std::string> {
    if (!store_->Has(digest)) {
      ASSIGN_OR_RETURN(int64_t n, Download(digest));
      ++got.blobs;
      got.bytes += n;
    }
    return store_->Directory(digest);
  };
  RETURN_IF_ERROR(WalkSnapshot(root, directory, [&](const std::string&, const v1::SnapshotEntry& e) {
    if (e.kind() == v1::SnapshotEntry::FILE && !store_->Has(e.digest())) files.insert(e.digest());
  }));
  for (const std::string& digest : files) {
    ASSIGN_OR_RETURN(int64_t n, Download(digest));
    ++got.blobs;
    got.bytes += n;
  }
  return got;
}

}  // namespace dockyard
