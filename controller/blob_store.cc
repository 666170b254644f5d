#include "controller/blob_store.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controller/file_blob_store.h"
#include "controller/s3_blob_store.h"

namespace dockyard {

absl::StatusOr<std::string> BlobStore::ReadOneWhole(const SizedBlob& blob) {
  // One byte more than the record says: a longer blob shows itself.
  ASSIGN_OR_RETURN(std::string read, Read(blob.sha256, 0, blob.size + 1));
  if (static_cast<int64_t>(read.size()) != blob.size) {
    return absl::DataLossError(
        absl::StrCat("blob ", blob.sha256, " holds ", read.size(), " bytes, not the ", blob.size, " of its record"));
  }
  return read;
}

absl::StatusOr<std::vector<std::string>> BlobStore::ReadWhole(const std::vector<SizedBlob>& blobs) {
  std::vector<std::string> read;
  read.reserve(blobs.size());
  for (const SizedBlob& blob : blobs) {
    ASSIGN_OR_RETURN(std::string data, ReadOneWhole(blob));
    read.push_back(std::move(data));
  }
  return read;
}

absl::StatusOr<std::unique_ptr<BlobStore>> OpenBlobStore(const BlobStoreOptions& options, const std::string& name) {
  if (options.spec.empty() || options.spec == "disk") {
    auto store = FileBlobStore::Open(options.data_dir + "/" + name);
    if (!store.ok()) return store.status();
    return std::unique_ptr<BlobStore>(*std::move(store));
  }
  ASSIGN_OR_RETURN(S3Location location, ParseS3Url(options.spec));
  if (options.s3_endpoint.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--blobs=", options.spec, " needs --s3_endpoint"));
  }
  if (options.s3_parallel_requests < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--s3_parallel_requests=", options.s3_parallel_requests, ": must be at least 1"));
  }
  location.prefix = absl::StrCat(location.prefix, location.prefix.empty() ? "" : "/", name);
  S3ClientOptions client;
  client.endpoint = options.s3_endpoint;
  client.region = options.s3_region;
  ASSIGN_OR_RETURN(client.credentials, LoadS3Credentials(options.s3_credentials_file));
  auto store = S3BlobStore::Open(std::make_shared<const S3Client>(std::move(client)), std::move(location),
                                 S3BlobStore::kPartBytes, options.s3_parallel_requests);
  if (!store.ok()) return store.status();
  return std::unique_ptr<BlobStore>(*std::move(store));
}

}  // namespace dockyard
