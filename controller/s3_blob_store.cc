#include "controller/s3_blob_store.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

bool Ok(const S3Client::Response& response) { return response.status >= 200 && response.status < 300; }

// S3 may answer 200 and still put an <Error> in the body (CompleteMultipartUpload,
// CopyObject): both must hold.
bool Done(const S3Client::Response& response) {
  return Ok(response) && !absl::StrContains(response.body, "<Error>");
}

// Uploads whose digest is known only at the end go under a name of their own.
std::string NewUploadId() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(absl::ToUnixNanos(absl::Now()), "-", counter++);
}

class S3Writer final : public BlobStore::Writer {
 public:
  // `stored`: the announced digest is in the bucket already; the data is only checked.
  S3Writer(S3BlobStore* store, std::string sha256, int64_t size, bool stored)
      : store_(store), announced_(!sha256.empty()), want_sha256_(std::move(sha256)), want_size_(size),
        stored_(stored) {}

  ~S3Writer() override {
    if (!upload_id_.empty() && !completed_) {  // nothing of it becomes visible
      (void)store_->client().Send("DELETE", store_->bucket(), key_, {{"uploadId", upload_id_}});
    }
  }

  absl::Status Append(std::string_view data) override {
    if (sealed_) return absl::FailedPreconditionError("blob writer is sealed");
    if (written_ + static_cast<int64_t>(data.size()) > want_size_) {
      return absl::DataLossError(absl::StrCat("blob ", want_sha256_, " is larger than the announced ", want_size_,
                                              " bytes"));
    }
    hash_.Update(data);
    written_ += static_cast<int64_t>(data.size());
    if (stored_) return absl::OkStatus();
    buffer_.append(data);
    if (static_cast<int64_t>(buffer_.size()) >= store_->part_bytes()) RETURN_IF_ERROR(UploadPart());
    return absl::OkStatus();
  }

  absl::Status Seal(const std::string& sha256) override {
    if (sealed_) return absl::FailedPreconditionError("blob writer is sealed");
    sealed_ = true;
    if (!sha256.empty()) {
      if (!IsSha256Hex(sha256) || (!want_sha256_.empty() && sha256 != want_sha256_)) {
        return absl::DataLossError(absl::StrCat("blob announced as sha256 ",
                                                want_sha256_.empty() ? sha256 : want_sha256_, " ended as ", sha256));
      }
    }
    if (written_ != want_size_) {
      return absl::DataLossError(absl::StrCat("blob ", want_sha256_.empty() ? sha256 : want_sha256_, ": got ",
                                              written_, " bytes, announced ", want_size_));
    }
    const std::string digest = hash_.HexDigest();
    const std::string& expected = want_sha256_.empty() ? sha256 : want_sha256_;
    if (!expected.empty() && digest != expected) {
      return absl::DataLossError(absl::StrCat("blob announced as sha256 ", expected, " hashed to ", digest));
    }
    want_sha256_ = digest;
    verified_ = true;
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    RETURN_IF_ERROR(Seal(""));
    return Publish();
  }

  // After a successful Seal: makes the verified blob visible under its digest.
  absl::Status Publish() {
    if (!verified_ || completed_) return absl::FailedPreconditionError("blob writer is not sealed");
    if (stored_) {
      completed_ = true;
      return absl::OkStatus();
    }
    const std::string final_key = store_->KeyOf(want_sha256_);
    if (upload_id_.empty()) {  // small: one PUT, now that its digest is proven
      completed_ = true;
      // An announced digest was looked up when the writer began; only one told at the
      // end is looked up now.
      if (!announced_ && store_->Contains(want_sha256_)) return absl::OkStatus();
      ASSIGN_OR_RETURN(auto response, store_->client().Send("PUT", store_->bucket(), final_key, {}, buffer_));
      if (!Ok(response)) return store_->client().ErrorOf(response, "cannot store blob " + want_sha256_);
      return absl::OkStatus();
    }
    if (!buffer_.empty()) RETURN_IF_ERROR(UploadPart());
    std::string parts = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags_.size(); ++i) {
      absl::StrAppend(&parts, "<Part><PartNumber>", i + 1, "</PartNumber><ETag>", etags_[i], "</ETag></Part>");
    }
    parts += "</CompleteMultipartUpload>";
    ASSIGN_OR_RETURN(auto response,
                     store_->client().Send("POST", store_->bucket(), key_, {{"uploadId", upload_id_}}, parts));
    if (!Done(response)) return store_->client().ErrorOf(response, "cannot complete the upload of " + want_sha256_);
    completed_ = true;
    if (key_ == final_key) return absl::OkStatus();
    // Streamed without a digest: copied under its name, now that it is known.
    ASSIGN_OR_RETURN(auto copied,
                     store_->client().Send("PUT", store_->bucket(), final_key, {}, {},
                                           {"x-amz-copy-source: /" + store_->bucket() + "/" + key_}));
    (void)store_->client().Send("DELETE", store_->bucket(), key_, {});
    if (!Done(copied)) return store_->client().ErrorOf(copied, "cannot store blob " + want_sha256_);
    return absl::OkStatus();
  }

 private:
  // Sends what is buffered as the next part, starting the multipart upload first.
  absl::Status UploadPart() {
    if (upload_id_.empty()) {
      key_ = want_sha256_.empty() ? store_->UploadKey(NewUploadId()) : store_->KeyOf(want_sha256_);
      ASSIGN_OR_RETURN(auto started, store_->client().Send("POST", store_->bucket(), key_, {{"uploads", ""}}));
      upload_id_ = XmlText(started.body, "UploadId");
      if (!Ok(started) || upload_id_.empty()) {
        return store_->client().ErrorOf(started, "cannot start a multipart upload of " + key_);
      }
    }
    const std::string number = absl::StrCat(etags_.size() + 1);
    ASSIGN_OR_RETURN(auto response, store_->client().Send("PUT", store_->bucket(), key_,
                                                          {{"partNumber", number}, {"uploadId", upload_id_}}, buffer_));
    if (!Ok(response) || response.headers.count("etag") == 0) {
      return store_->client().ErrorOf(response, absl::StrCat("cannot upload part ", number, " of ", key_));
    }
    etags_.push_back(response.headers["etag"]);
    buffer_.clear();
    return absl::OkStatus();
  }

  S3BlobStore* const store_;
  const bool announced_;     // the digest came with NewWriter (and was looked up then)
  std::string want_sha256_;  // "" until sealed when the sender hashes as it sends
  const int64_t want_size_;
  const bool stored_;
  Sha256 hash_;
  int64_t written_ = 0;
  std::string buffer_;  // at most one part
  std::string key_;     // of the multipart upload
  std::string upload_id_;
  std::vector<std::string> etags_;
  bool sealed_ = false;
  bool verified_ = false;
  bool completed_ = false;
};

}  // namespace

absl::StatusOr<S3Location> ParseS3Url(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "s3://") || rest.empty() || rest[0] == '/') {
    return absl::InvalidArgumentError(absl::StrCat("--blobs=", url, ": expected s3://bucket[/prefix]"));
  }
  S3Location location;
  const size_t slash = rest.find('/');
  location.bucket = std::string(rest.substr(0, slash));
  if (slash != absl::string_view::npos) location.prefix = std::string(absl::StripSuffix(rest.substr(slash + 1), "/"));
  for (char c : location.bucket + location.prefix) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) {
      return absl::InvalidArgumentError(
          absl::StrCat("--blobs=", url, ": bucket and prefix may hold only letters, digits, - _ . and /"));
    }
  }
  return location;
}

absl::StatusOr<std::unique_ptr<S3BlobStore>> S3BlobStore::Open(std::shared_ptr<const S3Client> client,
                                                              S3Location location, int64_t part_bytes,
                                                              int parallel_requests) {
  std::unique_ptr<S3BlobStore> store(
      new S3BlobStore(std::move(client), std::move(location), part_bytes, parallel_requests));
  ASSIGN_OR_RETURN(auto response, store->client().Send("GET", store->bucket(), "",
                                                       {{"list-type", "2"}, {"max-keys", "1"},
                                                        {"prefix", store->KeyOf("")}}));
  if (!Ok(response)) return store->client().ErrorOf(response, "cannot open the blob store " + store->Describe());
  return store;
}

std::string S3BlobStore::Describe() const {
  return absl::StrCat("s3://", location_.bucket, location_.prefix.empty() ? "" : "/", location_.prefix, " at ",
                      client_->endpoint());
}

std::string S3BlobStore::KeyOf(const std::string& sha256) const {
  return absl::StrCat(location_.prefix, location_.prefix.empty() ? "" : "/", "sha256/", sha256);
}

std::string S3BlobStore::UploadKey(const std::string& id) const {
  return absl::StrCat(location_.prefix, location_.prefix.empty() ? "" : "/", "uploads/", id);
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> S3BlobStore::NewWriter(const std::string& sha256, int64_t size) {
  if (!sha256.empty() && !IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", sha256, "\" is not a sha256 digest"));
  }
  if (size < 0) return absl::InvalidArgumentError(absl::StrCat("negative blob size ", size));
  const bool stored = !sha256.empty() && Contains(sha256);
  return std::unique_ptr<Writer>(new S3Writer(this, sha256, size, stored));
}

absl::Status S3BlobStore::AtOnce(size_t count, const std::function<absl::Status(size_t)>& work) const {
  // The first error is the answer; once there is one, no more are started.
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  absl::Status first_error;
  auto worker = [&] {
    for (size_t i = next++; i < count; i = next++) {
      absl::Status st = work(i);
      absl::MutexLock lock(&mu);
      if (!st.ok() && first_error.ok()) first_error = st;
      if (!first_error.ok()) next = count;
    }
  };
  const size_t workers = std::min(count, static_cast<size_t>(parallel_requests_));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < workers; ++t) threads.emplace_back(worker);  // this thread is one of them
  worker();
  for (std::thread& thread : threads) thread.join();
  return first_error;
}

absl::Status S3BlobStore::PublishAll(std::vector<std::unique_ptr<Writer>> sealed) {
  // Each is verified already, so any order is safe (what others stored before an
  // error is content under its own digest, harmless).
  return AtOnce(sealed.size(), [&](size_t i) { return static_cast<S3Writer*>(sealed[i].get())->Publish(); });
}

absl::StatusOr<std::vector<std::string>> S3BlobStore::ReadWhole(const std::vector<SizedBlob>& blobs) {
  std::vector<std::string> read(blobs.size());
  RETURN_IF_ERROR(AtOnce(blobs.size(), [&](size_t i) -> absl::Status {
    ASSIGN_OR_RETURN(read[i], ReadOneWhole(blobs[i]));  // Read checks a whole blob's digest too
    return absl::OkStatus();
  }));
  return read;
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> S3BlobStore::NewResumableWriter(const std::string& sha256,
                                                                                  int64_t size, int64_t offset) {
  if (offset != 0) {
    return absl::FailedPreconditionError(absl::StrCat("the controller holds 0 bytes of blob ", sha256, ", not ",
                                                      offset, ": resume from there"));
  }
  return NewWriter(sha256, size);
}

bool S3BlobStore::Contains(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) return false;
  auto response = client_->Send("HEAD", bucket(), KeyOf(sha256), {});
  return response.ok() && response->status == 200;
}

absl::StatusOr<int64_t> S3BlobStore::Size(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) return absl::InvalidArgumentError(absl::StrCat("\"", sha256, "\" is not a sha256 digest"));
  ASSIGN_OR_RETURN(auto response, client_->Send("HEAD", bucket(), KeyOf(sha256), {}));
  if (response.status == 404) return absl::NotFoundError("no blob " + sha256);
  if (!Ok(response)) return client_->ErrorOf(response, "cannot stat blob " + sha256);
  int64_t size = 0;
  if (!absl::SimpleAtoi(response.headers["content-length"], &size)) {
    return absl::InternalError(absl::StrCat(Describe(), ": blob ", sha256, " has no Content-Length"));
  }
  return size;
}

absl::StatusOr<std::string> S3BlobStore::Read(const std::string& sha256, int64_t offset, int64_t max_bytes) {
  if (!IsSha256Hex(sha256)) return absl::InvalidArgumentError(absl::StrCat("\"", sha256, "\" is not a sha256 digest"));
  if (max_bytes <= 0) return std::string();
  ASSIGN_OR_RETURN(auto response,
                   client_->Send("GET", bucket(), KeyOf(sha256), {}, {},
                                 {absl::StrCat("Range: bytes=", offset, "-", offset + max_bytes - 1)}));
  if (response.status == 416) return std::string();  // at or past the end
  if (response.status == 404) return absl::NotFoundError("no blob " + sha256);
  if (!Ok(response)) return client_->ErrorOf(response, "cannot read blob " + sha256);
  if (response.status == 200 && offset > 0) {  // a server that ignores ranges
    response.body = response.body.size() > static_cast<size_t>(offset) ? response.body.substr(offset) : "";
  }
  if (static_cast<int64_t>(response.body.size()) > max_bytes) response.body.resize(static_cast<size_t>(max_bytes));
  if (offset == 0 && static_cast<int64_t>(response.body.size()) < max_bytes && Sha256Hex(response.body) != sha256) {
    return absl::DataLossError(absl::StrCat(Describe(), ": blob ", sha256, " does not hash to its name"));
  }
  return std::move(response.body);
}

std::vector<BlobStore::Listed> S3BlobStore::List() {
  std::vector<Listed> listed;
  const std::string prefix = KeyOf("");
  std::string token;
  do {
    Query query = {{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty()) query.emplace_back("continuation-token", token);
    auto response = client_->Send("GET", bucket(), "", query);
    if (!response.ok() || !Ok(*response)) {
      Logger("controller")->warn("{}: cannot list blobs: {}", Describe(),
                                 response.ok() ? client_->ErrorOf(*response, "list").ToString()
                                               : response.status().ToString());
      break;
    }
    for (auto& fields : XmlRecords(response->body, "Contents")) {
      Listed blob;
      blob.sha256 = fields["Key"].substr(std::min(prefix.size(), fields["Key"].size()));
      if (!IsSha256Hex(blob.sha256)) continue;
      (void)absl::SimpleAtoi(fields["Size"], &blob.size);
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, fields["LastModified"], &blob.stored, &error)) {
        blob.stored = absl::Now();  // unknown age: treated as new, so never collected early
      }
      listed.push_back(std::move(blob));
    }
    token = XmlText(response->body, "IsTruncated") == "true" ? XmlText(response->body, "NextContinuationToken") : "";
  } while (!token.empty());
  return listed;
}

absl::Status S3BlobStore::Remove(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto response, client_->Send("DELETE", bucket(), KeyOf(sha256), {}));
  if (!Ok(response) && response.status != 404) return client_->ErrorOf(response, "cannot remove blob " + sha256);
  return absl::OkStatus();
}

}  // namespace dockyard
