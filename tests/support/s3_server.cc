#include "tests/support/s3_server.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "controller/s3_client.h"

namespace dockyard::testing {

std::string S3ForTests() {
  const char* dir = std::getenv("DOCKYARD_TEST_SCALEOUT");
  return dir == nullptr ? std::string() : std::string(dir) + "/swift";
}

absl::StatusOr<S3Bucket> CreateBucket(const std::string& dir, const std::string& hint) {
  static std::atomic<int> counter{0};
  S3Bucket bucket;
  ASSIGN_OR_RETURN(std::string endpoint, ReadFileToString(dir + "/endpoint"));
  bucket.endpoint = std::string(absl::StripAsciiWhitespace(endpoint));
  bucket.credentials_file = dir + "/credentials";
  std::string name = absl::AsciiStrToLower(absl::StrCat("dy-", hint, "-", ::getpid(), "-", counter++));
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '-';
  }
  name = name.substr(0, 63);
  S3ClientOptions options;
  options.endpoint = bucket.endpoint;
  ASSIGN_OR_RETURN(options.credentials, LoadS3Credentials(bucket.credentials_file));
  const S3Client client(options);
  ASSIGN_OR_RETURN(auto response, client.Send("PUT", name, "", {}));
  if (response.status != 200) return client.ErrorOf(response, "cannot create bucket " + name);
  bucket.url = "s3://" + name;
  return bucket;
}

}  // namespace dockyard::testing
