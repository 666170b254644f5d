// Test support: the S3 side of the scale-out tests. One OpenStack Swift with its S3
// layer serves a whole ctest run (tests/support/swift_for_tests.sh, a ctest fixture,
// in $DOCKYARD_TEST_SCALEOUT/swift); each test makes buckets of its own on it.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace dockyard::testing {

struct S3Bucket {
  std::string url;               // s3://NAME (for --blobs)
  std::string endpoint;          // http://127.0.0.1:PORT (for --s3_endpoint)
  std::string credentials_file;  // for --s3_credentials_file
};
// The fixture's directory under DOCKYARD_TEST_SCALEOUT, or "" when this run has none.
std::string S3ForTests();
// A new empty bucket on the server in `dir`, named after `hint` (made unique).
absl::StatusOr<S3Bucket> CreateBucket(const std::string& dir, const std::string& hint);

}  // namespace dockyard::testing
