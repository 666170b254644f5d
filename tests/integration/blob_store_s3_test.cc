// The blob store's contract (tests/unit/controller/blob_store_contract.cc) on a real
// S3 implementation (OpenStack Swift's s3api, started by the ctest fixture), plus
// what only a server can do wrong: refuse the credentials, or not be there.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/files.h"
#include "common/sha256.h"
#include "controller/s3_blob_store.h"
#include "tests/support/s3_server.h"
#include "tests/support/scratch_dir.h"
#include "tests/unit/controller/blob_store_contract.h"

namespace dockyard {
namespace {

using ::dockyard::testing::BlobStoreContract;
using ::testing::HasSubstr;
using ::testing::Not;

BlobStoreOptions FreshBucket() {
  const std::string server = testing::S3ForTests();
  EXPECT_FALSE(server.empty()) << "DOCKYARD_TEST_SCALEOUT is not set: run through ctest (fixture scaleout)";
  auto bucket = testing::CreateBucket(server, "contract");
  EXPECT_TRUE(bucket.ok()) << bucket.status();
  BlobStoreOptions options;
  if (!bucket.ok()) return options;
  options.spec = bucket->url + "/ci";
  options.s3_endpoint = bucket->endpoint;
  options.s3_credentials_file = bucket->credentials_file;
  return options;
}

std::unique_ptr<BlobStore> FreshStore() {
  auto store = OpenBlobStore(FreshBucket(), "blobs");
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(S3, BlobStoreContract, ::testing::Values(testing::BlobStoreBackend{"s3", FreshStore}),
                         [](const auto& info) { return info.param.name; });

TEST(S3BlobStore, AWrongSecretIsRefusedAtOpenSayingWhatToCheckWithoutShowingIt) {
  BlobStoreOptions options = FreshBucket();
  auto right = LoadS3Credentials(options.s3_credentials_file);
  ASSERT_TRUE(right.ok()) << right.status();
  options.s3_credentials_file = testing::FreshDir() + "/wrong-credentials";
  ASSERT_TRUE(WriteFileAtomically(options.s3_credentials_file,
                                  "[default]\naws_access_key_id = " + right->access_key +
                                      "\naws_secret_access_key = not-the-secret-xyz\n")
                  .ok());
  auto store = OpenBlobStore(options, "blobs");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kPermissionDenied) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("check the access key and secret"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(options.s3_endpoint));
  EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("not-the-secret-xyz")));
}

TEST(S3BlobStore, AMissingBucketIsRefusedAtOpenNamingIt) {
  BlobStoreOptions options = FreshBucket();
  options.spec = "s3://no-such-bucket-here/ci";
  auto store = OpenBlobStore(options, "blobs");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("s3://no-such-bucket-here/ci/blobs"));
}

TEST(S3BlobStore, AnEndpointThatDoesNotAnswerIsUnavailableNamingIt) {
  BlobStoreOptions options = FreshBucket();
  options.s3_endpoint = "http://127.0.0.1:1";
  auto store = OpenBlobStore(options, "blobs");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("http://127.0.0.1:1"));
}

TEST(S3BlobStore, ParallelRequestsBelowOneAreRefusedNamingTheFlag) {
  BlobStoreOptions options = FreshBucket();
  options.s3_parallel_requests = 0;
  auto store = OpenBlobStore(options, "blobs");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("--s3_parallel_requests=0"));
}

TEST(S3BlobStore, BlobsAreObjectsNamedByDigestUnderThePrefix) {
  const BlobStoreOptions options = FreshBucket();
  auto location = ParseS3Url(options.spec);
  ASSERT_TRUE(location.ok());
  auto store = OpenBlobStore(options, "caches");
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string digest = Sha256Hex("part");
  auto writer = (*store)->NewWriter(digest, 4);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("part").ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  S3ClientOptions client_options;
  client_options.endpoint = options.s3_endpoint;
  client_options.credentials = *LoadS3Credentials(options.s3_credentials_file);
  const S3Client client(client_options);
  auto object = client.Send("GET", location->bucket, "ci/caches/sha256/" + digest, {});
  ASSERT_TRUE(object.ok()) << object.status();
  EXPECT_EQ(object->status, 200);
  EXPECT_EQ(object->body, "part");
}

}  // namespace
}  // namespace dockyard
