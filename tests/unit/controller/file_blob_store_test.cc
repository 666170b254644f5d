#include "controller/file_blob_store.h"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "gtest/gtest.h"

#include "tests/support/scratch_dir.h"
#include "tests/unit/controller/blob_store_contract.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

using ::dockyard::testing::BlobStoreContract;
using ::dockyard::testing::FreshDir;

std::unique_ptr<FileBlobStore> OpenStore(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<FileBlobStore>> store = FileBlobStore::Open(dir);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

// Every regular file below `dir`, recursively.
std::vector<fs::path> FilesUnder(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(entry.path());
  }
  return out;
}

absl::Status Upload(FileBlobStore& store, const std::string& sha256, int64_t size,
                    const std::vector<std::string>& parts) {
  absl::StatusOr<std::unique_ptr<BlobStore::Writer>> writer = store.NewWriter(sha256, size);
  if (!writer.ok()) return writer.status();
  for (const std::string& part : parts) {
    if (absl::Status st = (*writer)->Append(part); !st.ok()) return st;
  }
  return (*writer)->Commit();
}

// The contract every blob store meets (blob_store_contract.cc), on the local disk.
INSTANTIATE_TEST_SUITE_P(Disk, BlobStoreContract,
                         ::testing::Values(testing::BlobStoreBackend{
                             "disk", []() -> std::unique_ptr<BlobStore> { return OpenStore(FreshDir()); }}),
                         [](const auto& info) { return info.param.name; });

TEST(FileBlobStore, ACommittedBlobIsAFileNamedByItsDigestAndNoTempFileStays) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string content = "hello, blob store";
  const std::string digest = Sha256Hex(content);
  ASSERT_TRUE(Upload(*store, digest, content.size(), {"hello, ", "blob ", "store"}).ok());
  EXPECT_EQ(store->PathOf(digest), dir + "/sha256/" + digest.substr(0, 2) + "/" + digest);
  EXPECT_TRUE(fs::exists(store->PathOf(digest)));
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
}

TEST(FileBlobStore, WrongDigestIsDataLossAndLeavesNothingVisible) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string announced = Sha256Hex("what was promised");
  const std::string sent = "what was sent!!!!";
  ASSERT_EQ(sent.size(), std::string("what was promised").size());

  EXPECT_EQ(Upload(*store, announced, sent.size(), {sent}).code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(store->Contains(announced));
  EXPECT_FALSE(store->Contains(Sha256Hex(sent)));
  EXPECT_TRUE(FilesUnder(dir + "/sha256").empty());
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
}

TEST(FileBlobStore, TooFewBytesIsDataLossAndLeavesNothingVisible) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string content = "complete content";
  const std::string digest = Sha256Hex(content);

  EXPECT_EQ(Upload(*store, digest, content.size(), {content.substr(0, 5)}).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(store->Contains(digest));
  EXPECT_TRUE(FilesUnder(dir + "/sha256").empty());
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
}

TEST(FileBlobStore, MoreBytesThanAnnouncedIsDataLossAndLeavesNothingVisible) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string content = "complete content";
  const std::string digest = Sha256Hex(content);

  {
    absl::StatusOr<std::unique_ptr<BlobStore::Writer>> writer = store->NewWriter(digest, 4);
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_EQ((*writer)->Append(content).code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ((*writer)->Commit().code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_FALSE(store->Contains(digest));
  EXPECT_TRUE(FilesUnder(dir + "/sha256").empty());
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
}

TEST(FileBlobStore, WriterDestroyedWithoutCommitLeavesNoTempFile) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string content = "cut off mid-upload";
  const std::string digest = Sha256Hex(content);
  {
    absl::StatusOr<std::unique_ptr<BlobStore::Writer>> writer = store->NewWriter(digest, content.size());
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(content.substr(0, 6)).ok());
    EXPECT_EQ(FilesUnder(dir + "/tmp").size(), 1u) << "the upload is written to a temp file";
    EXPECT_FALSE(store->Contains(digest)) << "nothing half-written is visible";
  }
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
  EXPECT_FALSE(store->Contains(digest));
}

TEST(FileBlobStore, CommitTwiceIsRefused) {
  std::unique_ptr<FileBlobStore> store = OpenStore(FreshDir());
  ASSERT_NE(store, nullptr);
  const std::string digest = Sha256Hex("x");
  absl::StatusOr<std::unique_ptr<BlobStore::Writer>> writer = store->NewWriter(digest, 1);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("x").ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ((*writer)->Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*writer)->Append("y").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store->Contains(digest));
}

TEST(FileBlobStore, OpenClearsLeftoverTempFiles) {
  const std::string dir = FreshDir();
  fs::create_directories(dir + "/tmp/nested");
  std::ofstream(dir + "/tmp/leftover.123.0") << "half an upload";
  std::ofstream(dir + "/tmp/nested/also") << "more";
  ASSERT_EQ(FilesUnder(dir + "/tmp").size(), 2u);

  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::is_directory(dir + "/tmp"));
  EXPECT_TRUE(fs::is_directory(dir + "/sha256"));
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
}

TEST(FileBlobStore, OpenKeepsCommittedBlobs) {
  const std::string dir = FreshDir();
  const std::string digest = Sha256Hex("kept");
  {
    std::unique_ptr<FileBlobStore> store = OpenStore(dir);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Upload(*store, digest, 4, {"kept"}).ok());
  }
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Contains(digest));
  EXPECT_EQ(*store->Read(digest, 0, 100), "kept");
}

TEST(FileBlobStore, BadDigestsAreInvalidArgument) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string good = Sha256Hex("x");
  std::string upper = good;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_NE(upper, good);

  for (const std::string& bad : {std::string("../x"), upper, std::string(""), good.substr(1),
                                 good + "0", "../" + good.substr(3), std::string(64, 'g')}) {
    SCOPED_TRACE(bad);
    // An empty digest is a writer whose digest comes at its end (below).
    if (!bad.empty()) {
      EXPECT_EQ(store->NewWriter(bad, 1).status().code(), absl::StatusCode::kInvalidArgument);
    }
    EXPECT_EQ(store->Size(bad).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Read(bad, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(store->Contains(bad));
  }
  EXPECT_TRUE(FilesUnder(dir).empty());
}

TEST(FileBlobStore, AWriterWhoseDigestAtTheEndIsWrongLeavesNoTempFile) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  auto lying = store->NewWriter("", 5);
  ASSERT_TRUE(lying.ok());
  ASSERT_TRUE((*lying)->Append("third").ok());
  EXPECT_EQ((*lying)->Seal(Sha256Hex("other")).code(), absl::StatusCode::kDataLoss);
  lying->reset();
  EXPECT_TRUE(std::filesystem::is_empty(dir + "/tmp"));
  EXPECT_TRUE(FilesUnder(dir + "/sha256").empty());
}

TEST(FileBlobStore, SameContentWrittenTwiceIsStoredOnce) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string content = "same bytes";
  const std::string digest = Sha256Hex(content);

  ASSERT_TRUE(Upload(*store, digest, content.size(), {content}).ok());
  ASSERT_TRUE(Upload(*store, digest, content.size(), {"same ", "bytes"}).ok());

  std::vector<fs::path> files = FilesUnder(dir + "/sha256");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].filename().string(), digest);
  EXPECT_EQ(*store->Read(digest, 0, 100), content);
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
}

TEST(FileBlobStore, ConcurrentUploadsOfTheSameBlobUseSeparateTempFiles) {
  const std::string dir = FreshDir();
  std::unique_ptr<FileBlobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string content = "raced";
  const std::string digest = Sha256Hex(content);

  absl::StatusOr<std::unique_ptr<BlobStore::Writer>> first = store->NewWriter(digest, content.size());
  absl::StatusOr<std::unique_ptr<BlobStore::Writer>> second = store->NewWriter(digest, content.size());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*first)->Append(content).ok());
  ASSERT_TRUE((*second)->Append(content).ok());
  ASSERT_TRUE((*second)->Commit().ok());
  ASSERT_TRUE((*first)->Commit().ok());
  first->reset();
  second->reset();

  EXPECT_EQ(FilesUnder(dir + "/sha256").size(), 1u);
  EXPECT_TRUE(FilesUnder(dir + "/tmp").empty());
  EXPECT_EQ(*store->Read(digest, 0, 100), content);
}

}  // namespace
}  // namespace dockyard
