// A small client for the S3 HTTP API (AWS S3, Ceph's radosgw, Swift's s3api, MinIO):
// path-style requests on libcurl, signed with SigV4 by libcurl itself
// (CURLOPT_AWS_SIGV4); every body is hashed into x-amz-content-sha256, so the store
// checks what it received. Thread-safe: each request uses its own curl handle.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dockyard {

struct S3Credentials {
  std::string access_key;
  std::string secret_key;  // never logged, never in an error
};

// From `file` (lines aws_access_key_id=… and aws_secret_access_key=…, as in an AWS
// credentials file; [section] lines and comments are ignored) or, with no file,
// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. INVALID_ARGUMENT naming the file
// or the variables when a key is missing.
absl::StatusOr<S3Credentials> LoadS3Credentials(const std::string& file);

struct S3ClientOptions {
  std::string endpoint;  // http(s)://host:port, no path
  std::string region = "us-east-1";
  S3Credentials credentials;
  absl::Duration timeout = absl::Minutes(10);  // one request, a large part included
  absl::Duration patience = absl::Seconds(30);  // retrying a busy or silent service
};

class S3Client {
 public:
  explicit S3Client(S3ClientOptions options);

  struct Response {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
  };
  // One request: `method` on /bucket/key with `query` given as name/value pairs
  // (they are put in SigV4's canonical order and encoding) and `body`. Returns any
  // HTTP status; UNAVAILABLE naming the endpoint when no answer came.
  // A busy service (HTTP 500, 503 SlowDown) or no answer is tried again with the
  // common back-off for up to `S3ClientOptions::patience`; then the last answer
  // (or UNAVAILABLE) is returned.
  absl::StatusOr<Response> Send(const std::string& method, const std::string& bucket, const std::string& key,
                                const std::vector<std::pair<std::string, std::string>>& query,
                                std::string_view body = {}, const std::vector<std::string>& headers = {}) const;

  // The status for a response that is not a success, from S3's <Error> document:
  // PERMISSION_DENIED for refused credentials or signatures (saying which to check),
  // NOT_FOUND for a missing bucket or key, UNAVAILABLE for 5xx, else INTERNAL. The
  // message names `what` and the endpoint.
  absl::Status ErrorOf(const Response& response, const std::string& what) const;

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  absl::StatusOr<Response> SendOnce(const std::string& method, const std::string& path, const std::string& url,
                                    std::string_view body, const std::vector<std::string>& headers) const;

  S3ClientOptions options_;
};

// The text of the first element named `name` in an XML document; "" if none.
std::string XmlText(std::string_view xml, const std::string& name);
// For each element named `record`, its child elements' names and texts.
std::vector<std::map<std::string, std::string>> XmlRecords(std::string_view xml, const std::string& record);

}  // namespace dockyard
