#include "tests/unit/controller/blob_store_contract.h"

#include <cctype>
#include <string>
#include <vector>

#include "common/sha256.h"

namespace dockyard::testing {
namespace {

absl::Status Upload(BlobStore& store, const std::string& sha256, int64_t size, const std::vector<std::string>& parts) {
  auto writer = store.NewWriter(sha256, size);
  if (!writer.ok()) return writer.status();
  for (const std::string& part : parts) {
    if (absl::Status st = (*writer)->Append(part); !st.ok()) return st;
  }
  return (*writer)->Commit();
}

// `size` bytes no compressor or deduplicator would shortcut.
std::string Noise(size_t size) {
  std::string out(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return out;
}

// Everything of blob `sha256`, read in `chunk`-byte ranges as the download streams do.
std::string ReadAll(BlobStore& store, const std::string& sha256, int64_t chunk) {
  std::string out;
  for (;;) {
    auto piece = store.Read(sha256, static_cast<int64_t>(out.size()), chunk);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok() || piece->empty()) return out;
    out += *piece;
  }
}

TEST_P(BlobStoreContract, ACommittedBlobIsReadableByRange) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string content = "hello, blob store";
  const std::string digest = Sha256Hex(content);
  EXPECT_FALSE(store->Contains(digest));
  EXPECT_EQ(store->Size(digest).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Read(digest, 0, 10).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(Upload(*store, digest, content.size(), {"hello, ", "blob ", "store"}).ok());
  EXPECT_TRUE(store->Contains(digest));
  EXPECT_EQ(*store->Size(digest), static_cast<int64_t>(content.size()));
  EXPECT_EQ(*store->Read(digest, 0, 1024), content);
  EXPECT_EQ(*store->Read(digest, 7, 4), "blob");
  EXPECT_EQ(*store->Read(digest, static_cast<int64_t>(content.size()), 10), "");
}

TEST_P(BlobStoreContract, AnEmptyBlobCanBeStored) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string digest = Sha256Hex("");
  ASSERT_TRUE(Upload(*store, digest, 0, {}).ok());
  EXPECT_TRUE(store->Contains(digest));
  EXPECT_EQ(*store->Size(digest), 0);
  EXPECT_EQ(*store->Read(digest, 0, 10), "");
}

TEST_P(BlobStoreContract, WrongContentIsDataLossAndLeavesNothingListed) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string announced = Sha256Hex("what was promised");
  const std::string sent = "what was sent!!!!";
  EXPECT_EQ(Upload(*store, announced, sent.size(), {sent}).code(), absl::StatusCode::kDataLoss);
  const std::string content = "complete content";
  EXPECT_EQ(Upload(*store, Sha256Hex(content), content.size(), {content.substr(0, 5)}).code(),
            absl::StatusCode::kDataLoss);  // too few bytes
  {
    auto writer = store->NewWriter(Sha256Hex(content), 4);
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_EQ((*writer)->Append(content).code(), absl::StatusCode::kDataLoss);  // too many
  }
  EXPECT_FALSE(store->Contains(announced));
  EXPECT_FALSE(store->Contains(Sha256Hex(sent)));
  EXPECT_FALSE(store->Contains(Sha256Hex(content)));
  EXPECT_TRUE(store->List().empty());
}

TEST_P(BlobStoreContract, AWriterDroppedBeforeItsCommitLeavesNothingListed) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string content = Noise(3 << 20);
  {
    auto writer = store->NewWriter(Sha256Hex(content), static_cast<int64_t>(content.size()));
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(content.substr(0, 1 << 20)).ok());
  }
  EXPECT_FALSE(store->Contains(Sha256Hex(content)));
  EXPECT_TRUE(store->List().empty());
}

TEST_P(BlobStoreContract, BadDigestsAreRefused) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string good = Sha256Hex("x");
  std::string upper = good;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& bad : {std::string("../x"), upper, good.substr(1), good + "0", "../" + good.substr(3),
                                 std::string(64, 'g')}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(store->NewWriter(bad, 1).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Size(bad).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Read(bad, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(store->Contains(bad));
  }
  EXPECT_EQ(store->NewWriter(good, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(BlobStoreContract, WritersWhoseDigestComesAtTheEndAreVerifiedThenPublishedTogether) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  std::vector<std::unique_ptr<BlobStore::Writer>> sealed;
  for (const std::string content : {"first", "second"}) {
    auto writer = store->NewWriter("", static_cast<int64_t>(content.size()));
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(content).ok());
    ASSERT_TRUE((*writer)->Seal(Sha256Hex(content)).ok());
    EXPECT_FALSE(store->Contains(Sha256Hex(content)));  // sealed is not yet visible
    sealed.push_back(*std::move(writer));
  }
  ASSERT_TRUE(store->PublishAll(std::move(sealed)).ok());
  EXPECT_EQ(*store->Read(Sha256Hex("first"), 0, 100), "first");
  EXPECT_EQ(*store->Read(Sha256Hex("second"), 0, 100), "second");

  // The digest told at the end must be the data's; a wrong one leaves nothing behind.
  auto lying = store->NewWriter("", 5);
  ASSERT_TRUE(lying.ok());
  ASSERT_TRUE((*lying)->Append("third").ok());
  EXPECT_EQ((*lying)->Seal(Sha256Hex("other")).code(), absl::StatusCode::kDataLoss);
  lying->reset();
  EXPECT_FALSE(store->Contains(Sha256Hex("third")));
  EXPECT_FALSE(store->Contains(Sha256Hex("other")));
  EXPECT_EQ(store->List().size(), 2u);
}

TEST_P(BlobStoreContract, ABatchOfManyFilesIsPublishedWholeEvenWithOneContentTwice) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> contents;
  for (int i = 0; i < 40; ++i) contents.push_back("file " + std::to_string(i));
  contents.push_back("file 7");  // two artifacts of the same content, stored at once
  std::vector<std::unique_ptr<BlobStore::Writer>> sealed;
  for (const std::string& content : contents) {
    auto writer = store->NewWriter("", static_cast<int64_t>(content.size()));
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(content).ok());
    ASSERT_TRUE((*writer)->Seal(Sha256Hex(content)).ok());
    sealed.push_back(*std::move(writer));
  }
  const absl::Status published = store->PublishAll(std::move(sealed));
  ASSERT_TRUE(published.ok()) << published;
  for (const std::string& content : contents) EXPECT_EQ(*store->Read(Sha256Hex(content), 0, 100), content);
  EXPECT_EQ(store->List().size(), 40u);
}

TEST_P(BlobStoreContract, SmallBlobsAreReadWholeInOrderAndOneNotOfItsRecordedSizeIsDataLoss) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  std::vector<SizedBlob> blobs;
  std::vector<std::string> contents;
  for (int i = 0; i < 20; ++i) contents.push_back(std::string(static_cast<size_t>(i * 7), static_cast<char>('a' + i)));
  contents.push_back(contents[3]);  // one content asked for twice
  for (const std::string& content : contents) {
    const std::string digest = Sha256Hex(content);
    if (!store->Contains(digest)) {
      ASSERT_TRUE(Upload(*store, digest, content.size(), {content}).ok());
    }
    blobs.push_back({digest, static_cast<int64_t>(content.size())});
  }
  auto read = store->ReadWhole(blobs);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);

  std::vector<SizedBlob> wrong = {blobs[5], blobs[6]};
  wrong[1].size -= 1;  // a record that says less than the blob holds
  EXPECT_EQ(store->ReadWhole(wrong).status().code(), absl::StatusCode::kDataLoss);
  wrong[1].size += 2;  // ... or more
  EXPECT_EQ(store->ReadWhole(wrong).status().code(), absl::StatusCode::kDataLoss);
  wrong[1] = {Sha256Hex("never stored"), 12};
  EXPECT_EQ(store->ReadWhole(wrong).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(BlobStoreContract, ALargeBlobStreamsThroughInPiecesAndReadsBackExactly) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string content = Noise((20 << 20) + 3);  // several parts of an S3 multipart upload
  const std::string digest = Sha256Hex(content);
  for (const std::string& announced : {digest, std::string()}) {  // digest first, and digest at the end
    SCOPED_TRACE(announced.empty() ? "digest at the end" : "digest announced");
    auto writer = store->NewWriter(announced, static_cast<int64_t>(content.size()));
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (size_t at = 0; at < content.size(); at += 1 << 20) {
      const absl::Status appended = (*writer)->Append(std::string_view(content).substr(at, 1 << 20));
      ASSERT_TRUE(appended.ok()) << appended;
    }
    std::vector<std::unique_ptr<BlobStore::Writer>> sealed;
    ASSERT_TRUE((*writer)->Seal(digest).ok());
    sealed.push_back(*std::move(writer));
    const absl::Status published = store->PublishAll(std::move(sealed));
    ASSERT_TRUE(published.ok()) << published;
    EXPECT_EQ(*store->Size(digest), static_cast<int64_t>(content.size()));
    EXPECT_EQ(Sha256Hex(ReadAll(*store, digest, 1 << 20)), digest);
    ASSERT_EQ(store->List().size(), 1u);  // once, under its digest; no upload left over
  }
}

TEST_P(BlobStoreContract, ListShowsStoredBlobsAndRemoveDeletesThem) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  for (const std::string content : {"a", "bb", "ccc"}) {
    ASSERT_TRUE(Upload(*store, Sha256Hex(content), content.size(), {content}).ok());
  }
  ASSERT_TRUE(Upload(*store, Sha256Hex("bb"), 2, {"bb"}).ok());  // again: still one blob
  auto listed = store->List();
  ASSERT_EQ(listed.size(), 3u);
  int64_t total = 0;
  for (const auto& blob : listed) {
    total += blob.size;
    EXPECT_LE(blob.stored, absl::Now() + absl::Minutes(1));
    EXPECT_GE(blob.stored, absl::Now() - absl::Minutes(10));
  }
  EXPECT_EQ(total, 6);
  ASSERT_TRUE(store->Remove(Sha256Hex("bb")).ok());
  ASSERT_TRUE(store->Remove(Sha256Hex("bb")).ok());  // already gone: fine
  EXPECT_FALSE(store->Contains(Sha256Hex("bb")));
  EXPECT_EQ(store->List().size(), 2u);
}

TEST_P(BlobStoreContract, AResumableUploadStartsWhereTheStoreSaysAndNowhereElse) {
  auto store = GetParam().fresh();
  ASSERT_NE(store, nullptr);
  const std::string content = "resumable content";
  const std::string digest = Sha256Hex(content);
  EXPECT_EQ(store->PartialSize(digest), 0);
  EXPECT_EQ(store->NewResumableWriter(digest, content.size(), 5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto writer = store->NewResumableWriter(digest, content.size(), store->PartialSize(digest));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(content).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(*store->Read(digest, 0, 100), content);
}

}  // namespace
}  // namespace dockyard::testing
