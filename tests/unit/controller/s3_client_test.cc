// The S3 plumbing that needs no server: URLs, credentials files, XML answers. The
// requests themselves are proven against a real S3 (Swift) in blob_store_s3_test.
#include "controller/s3_client.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "controller/s3_blob_store.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

using ::dockyard::testing::FreshDir;
using ::testing::HasSubstr;

TEST(ParseS3Url, BucketAndPrefixAreSplitAndTrimmed) {
  auto location = ParseS3Url("s3://ci-blobs/dockyard/main/");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->bucket, "ci-blobs");
  EXPECT_EQ(location->prefix, "dockyard/main");
  auto bare = ParseS3Url("s3://ci-blobs");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->prefix, "");
}

TEST(ParseS3Url, WhatIsNotAnS3UrlIsRefusedNamingIt) {
  for (const std::string bad : {"http://x/y", "s3://", "s3:///prefix", "s3://bucket/a b", "s3://b/../?x"}) {
    SCOPED_TRACE(bad);
    auto location = ParseS3Url(bad);
    ASSERT_FALSE(location.ok());
    EXPECT_EQ(location.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(location.status().message()), HasSubstr("--blobs=" + bad));
  }
}

TEST(LoadS3Credentials, AnAwsStyleFileIsRead) {
  const std::string file = FreshDir() + "/credentials";
  std::ofstream(file) << "# for CI\n[default]\naws_access_key_id = AKIA123\naws_secret_access_key=s3cr3t/+=\n";
  auto credentials = LoadS3Credentials(file);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key, "AKIA123");
  EXPECT_EQ(credentials->secret_key, "s3cr3t/+=");
}

TEST(LoadS3Credentials, AFileWithoutTheSecretIsRefusedNamingTheFileNotTheKey) {
  const std::string file = FreshDir() + "/credentials";
  std::ofstream(file) << "aws_access_key_id=AKIA123\n";
  auto credentials = LoadS3Credentials(file);
  ASSERT_FALSE(credentials.ok());
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(credentials.status().message()), HasSubstr(file));
  EXPECT_THAT(std::string(credentials.status().message()), HasSubstr("aws_secret_access_key"));
}

TEST(LoadS3Credentials, AMissingFileIsNamed) {
  auto credentials = LoadS3Credentials(FreshDir() + "/nope");
  ASSERT_FALSE(credentials.ok());
  EXPECT_THAT(std::string(credentials.status().message()), HasSubstr("--s3_credentials_file"));
}

TEST(XmlRecords, AListingIsReadRecordByRecord) {
  const std::string listing = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>ci</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t/2</NextContinuationToken>
  <Contents><Key>blobs/sha256/aa</Key><Size>3</Size><LastModified>2026-12-02T17:00:00.000Z</LastModified></Contents>
  <Contents><Key>blobs/sha256/bb</Key><Size>5</Size></Contents>
</ListBucketResult>)";
  auto records = XmlRecords(listing, "Contents");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["Key"], "blobs/sha256/aa");
  EXPECT_EQ(records[0]["LastModified"], "2026-12-02T17:00:00.000Z");
  EXPECT_EQ(records[1]["Size"], "5");
  EXPECT_EQ(XmlText(listing, "NextContinuationToken"), "t/2");
  EXPECT_EQ(XmlText(listing, "Missing"), "");
  EXPECT_TRUE(XmlRecords("not xml <", "Contents").empty());
}

}  // namespace
}  // namespace dockyard
