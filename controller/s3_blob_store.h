// BlobStore in an S3-compatible bucket, for controllers that share their blobs (or
// outgrow one disk): objects <prefix>/sha256/<digest>. Content addressing holds as on
// disk: a blob appears under its digest only once all of it arrived and hashed
// right (a single PUT after the check, or a multipart upload completed after it); a
// digest already stored is not uploaded again. Large blobs stream in parts of
// `part_bytes`, never whole in memory. Uploads do not resume across calls
// (PartialSize is 0): a cut upload starts over. A batch (PublishAll, ReadWhole) is
// stored or read `parallel_requests` blobs at a time: each small blob costs a round
// trip or two, and a stage may publish thousands. Thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "controller/blob_store.h"
#include "controller/s3_client.h"

namespace dockyard {

// s3://bucket[/prefix]: INVALID_ARGUMENT naming the URL when it is not one.
struct S3Location {
  std::string bucket;
  std::string prefix;  // no leading or trailing '/'; may be empty
};
absl::StatusOr<S3Location> ParseS3Url(const std::string& url);

class S3BlobStore final : public BlobStore {
 public:
  // Checks that the bucket answers to these credentials (a wrong secret or a missing
  // bucket is refused here, at start, with the reason).
  static constexpr int64_t kPartBytes = 8 << 20;
  static absl::StatusOr<std::unique_ptr<S3BlobStore>> Open(std::shared_ptr<const S3Client> client,
                                                           S3Location location, int64_t part_bytes = kPartBytes,
                                                           int parallel_requests = 8);

  absl::StatusOr<std::unique_ptr<Writer>> NewWriter(const std::string& sha256, int64_t size) override;
  absl::Status PublishAll(std::vector<std::unique_ptr<Writer>> sealed) override;
  absl::StatusOr<std::unique_ptr<Writer>> NewResumableWriter(const std::string& sha256, int64_t size,
                                                             int64_t offset) override;
  int64_t PartialSize(const std::string&) override { return 0; }
  bool Contains(const std::string& sha256) override;
  absl::StatusOr<int64_t> Size(const std::string& sha256) override;
  // A read of a whole blob from offset 0 is checked against its digest (DATA_LOSS
  // when the object changed under its name); readers of parts check the whole.
  absl::StatusOr<std::string> Read(const std::string& sha256, int64_t offset, int64_t max_bytes) override;
  absl::StatusOr<std::vector<std::string>> ReadWhole(const std::vector<SizedBlob>& blobs) override;
  std::vector<Listed> List() override;
  absl::Status Remove(const std::string& sha256) override;

  // The object key of a blob, and of an upload whose digest is not known yet.
  std::string KeyOf(const std::string& sha256) const;
  std::string UploadKey(const std::string& id) const;
  const S3Client& client() const { return *client_; }
  const std::string& bucket() const { return location_.bucket; }
  int64_t part_bytes() const { return part_bytes_; }
  std::string Describe() const;

 private:
  // Runs work(0) … work(count - 1), `parallel_requests_` at a time.
  absl::Status AtOnce(size_t count, const std::function<absl::Status(size_t)>& work) const;

  S3BlobStore(std::shared_ptr<const S3Client> client, S3Location location, int64_t part_bytes,
              int parallel_requests)
      : client_(std::move(client)),
        location_(std::move(location)),
        part_bytes_(part_bytes),
        parallel_requests_(std::max(1, parallel_requests)) {}

  const std::shared_ptr<const S3Client> client_;
  const S3Location location_;
  const int64_t part_bytes_;
  const int parallel_requests_;
};

}  // namespace dockyard
