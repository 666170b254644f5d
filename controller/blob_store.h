// Content-addressed storage for source trees and artifacts, keyed by sha256. A blob
// becomes visible only once written in full and verified; nothing half-written is
// ever listed. FileBlobStore (the data dir) is the embedded default; S3BlobStore keeps
// blobs in an S3-compatible bucket that several controllers can share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dockyard {

// A blob and the size its record gives it.
struct SizedBlob {
  std::string sha256;
  int64_t size = 0;
};

class BlobStore {
 public:
  // One upload. Destroying a writer that was not committed discards what it wrote.
  // Not thread-safe: one writer belongs to one upload.
  class Writer {
   public:
    virtual ~Writer() = default;
    virtual absl::Status Append(std::string_view data) = 0;
    // Verifies size and digest, then publishes the blob atomically. DATA_LOSS when
    // they do not match what was announced (the data is discarded).
    virtual absl::Status Commit() = 0;
    // The first half of a commit, for batches: verifies size and digest (`sha256`, or
    // the one announced when it is empty) and closes the data, which stays invisible
    // until PublishAll. DATA_LOSS as Commit.
    virtual absl::Status Seal(const std::string& sha256) = 0;
  };

  virtual ~BlobStore() = default;
  // Starts an upload of a blob announced as `sha256` (hex) of `size` bytes. An empty
  // `sha256`: the sender tells it at the end (Seal), having hashed as it sent.
  virtual absl::StatusOr<std::unique_ptr<Writer>> NewWriter(const std::string& sha256,
                                                            int64_t size) = 0;
  // Publishes sealed writers' blobs: all made durable with one flush to disk, then
  // all visible (many small artifacts cost one flush, not one each).
  virtual absl::Status PublishAll(std::vector<std::unique_ptr<Writer>> sealed) = 0;
  // A resumable upload: what it wrote stays (never listed, never readable) when it
  // is destroyed uncommitted, so a later writer continues from `offset` — which
  // must equal PartialSize(); 0 starts over. FAILED_PRECONDITION for another
  // offset, UNAVAILABLE while another resumable upload of the blob is under way,
  // DATA_LOSS discards the partial data.
  virtual absl::StatusOr<std::unique_ptr<Writer>> NewResumableWriter(const std::string& sha256, int64_t size,
                                                                     int64_t offset) = 0;
  // Bytes an interrupted resumable upload of `sha256` left; 0 for none.
  virtual int64_t PartialSize(const std::string& sha256) = 0;
  virtual bool Contains(const std::string& sha256) = 0;
  // NOT_FOUND for an unknown blob.
  virtual absl::StatusOr<int64_t> Size(const std::string& sha256) = 0;
  // Up to `max_bytes` from `offset`; empty at the end.
  virtual absl::StatusOr<std::string> Read(const std::string& sha256, int64_t offset,
                                           int64_t max_bytes) = 0;
  // Several small blobs whole, in order. DATA_LOSS when one holds other than its
  // size; the first error is the answer. This one reads them one after another; a
  // store whose reads are round trips overrides it to read them side by side.
  virtual absl::StatusOr<std::vector<std::string>> ReadWhole(const std::vector<SizedBlob>& blobs);

  struct Listed {
    std::string sha256;
    int64_t size = 0;
    absl::Time stored;  // when it was written
  };
  // Every stored blob (for collecting what nothing references any more).
  virtual std::vector<Listed> List() = 0;
  // OK when it is already gone.
  virtual absl::Status Remove(const std::string& sha256) = 0;

 protected:
  // One blob of ReadWhole: DATA_LOSS unless it holds exactly its recorded size.
  absl::StatusOr<std::string> ReadOneWhole(const SizedBlob& blob);
};

// Where blobs live, from --blobs and the --s3_* flags.
struct BlobStoreOptions {
  std::string spec = "disk";  // "disk" (under the data dir) or s3://bucket[/prefix]
  std::string data_dir;
  std::string s3_endpoint;  // http(s)://host:port
  std::string s3_region = "us-east-1";
  std::string s3_credentials_file;  // "": the AWS_* environment variables
  // Blobs of one batch (a stage's artifacts stored, small files of one download) sent
  // to or fetched from S3 at once.
  int s3_parallel_requests = 8;
};
// Opens the store called `name` ("blobs": sources and artifacts; "caches": keyed-cache
// parts): <data_dir>/<name>, or <prefix>/<name>/ in the bucket. Errors name the flag
// or the store and say what to fix.
absl::StatusOr<std::unique_ptr<BlobStore>> OpenBlobStore(const BlobStoreOptions& options, const std::string& name);

}  // namespace dockyard
