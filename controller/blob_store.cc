#include "controller/blob_store.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controller/file_blob_store.h"
#include "controller/s3_blob_store.h"

namespace dockyard {

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
  if (options.s3_parallel_publishes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--s3_parallel_publishes=", options.s3_parallel_publishes, ": must be at least 1"));
  }
  location.prefix = absl::StrCat(location.prefix, location.prefix.empty() ? "" : "/", name);
  S3ClientOptions client;
  client.endpoint = options.s3_endpoint;
  client.region = options.s3_region;
  ASSIGN_OR_RETURN(client.credentials, LoadS3Credentials(options.s3_credentials_file));
  auto store = S3BlobStore::Open(std::make_shared<const S3Client>(std::move(client)), std::move(location),
                                 S3BlobStore::kPartBytes, options.s3_parallel_publishes);
  if (!store.ok()) return store.status();
  return std::unique_ptr<BlobStore>(*std::move(store));
}

}  // namespace dockyard
