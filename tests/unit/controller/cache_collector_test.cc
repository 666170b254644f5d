#include "controller/cache_collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/sha256.h"
#include "common/snapshot_tree.h"
#include "controller/file_blob_store.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

void Store(BlobStore& store, const std::string& bytes) {
  auto writer = store.NewWriter(Sha256Hex(bytes), static_cast<int64_t>(bytes.size()));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(bytes).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
}

// A snapshot of `files` (name -> content), stored whole in `store`; returns its root.
std::string StoreSnapshot(BlobStore& store, const std::map<std::string, std::string>& files) {
  SnapshotBuilder builder;
  for (const auto& [name, content] : files) {
    EXPECT_TRUE(builder.AddFile(name, Sha256Hex(content), static_cast<int64_t>(content.size()), 0644, 0, 0).ok());
    Store(store, content);
  }
  SnapshotTree tree = builder.Finish();
  for (const auto& [digest, bytes] : tree.directories) Store(store, bytes);
  return tree.root;
}

TEST(CacheCollector, RemovesWhatNoLiveSnapshotReachesAndKeepsSharedAndYoungParts) {
  auto store = FileBlobStore::Open(testing::FreshDir());
  ASSERT_TRUE(store.ok());
  const std::string kept = StoreSnapshot(**store, {{"lib/shared.whl", "shared"}, {"lib/kept.whl", "kept"}});
  const std::string gone = StoreSnapshot(**store, {{"lib/shared.whl", "shared"}, {"lib/gone.whl", "gone"}});
  const absl::Time later = absl::Now() + absl::Hours(1);

  auto young = CollectCacheParts(**store, {kept}, absl::Now(), absl::Minutes(10));
  ASSERT_TRUE(young.ok());
  EXPECT_EQ(young->removed, 0) << "everything is younger than the grace period";

  auto collected = CollectCacheParts(**store, {kept}, later, absl::Minutes(10));
  ASSERT_TRUE(collected.ok()) << collected.status();
  EXPECT_FALSE((*store)->Contains(Sha256Hex("gone")));
  EXPECT_FALSE((*store)->Contains(gone));
  EXPECT_TRUE((*store)->Contains(Sha256Hex("shared")));
  EXPECT_TRUE((*store)->Contains(Sha256Hex("kept")));
  EXPECT_TRUE((*store)->Contains(kept));
  EXPECT_EQ(collected->removed, 3) << "gone.whl, and the root and lib listings of its snapshot";
}

}  // namespace
}  // namespace dockyard
