#include "common/snapshot_tree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/sha256.h"

namespace dockyard {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

SnapshotTree Small(const std::string& content, uint32_t mode = 0644) {
  SnapshotBuilder b;
  EXPECT_TRUE(b.AddFile("deps/z.whl", Sha256Hex(content), static_cast<int64_t>(content.size()), mode, 0, 0).ok());
  EXPECT_TRUE(b.AddFile("deps/a.whl", Sha256Hex("a"), 1, 0644, 0, 0).ok());
  EXPECT_TRUE(b.AddDirectory("empty", 0700, 1000, 1000).ok());
  EXPECT_TRUE(b.AddSymlink("deps/latest", "z.whl", 0, 0).ok());
  return b.Finish();
}

TEST(SnapshotTree, TheRootDigestNamesContentOwnersAndModesWhateverTheOrderOfEntries) {
  SnapshotBuilder reversed;
  ASSERT_TRUE(reversed.AddSymlink("deps/latest", "z.whl", 0, 0).ok());
  ASSERT_TRUE(reversed.AddDirectory("empty", 0700, 1000, 1000).ok());
  ASSERT_TRUE(reversed.AddFile("deps/a.whl", Sha256Hex("a"), 1, 0644, 0, 0).ok());
  ASSERT_TRUE(reversed.AddFile("deps/z.whl", Sha256Hex("zz"), 2, 0644, 0, 0).ok());
  EXPECT_EQ(reversed.Finish().root, Small("zz").root);
  EXPECT_NE(Small("zz").root, Small("zZ").root);
  EXPECT_NE(Small("zz").root, Small("zz", 0600).root);
  EXPECT_EQ(Small("zz").directories.size(), 3u) << "root, deps, empty";
}

TEST(SnapshotTree, LinksLeadingOutOfTheTreeAndBadPathsAreRefused) {
  SnapshotBuilder b;
  EXPECT_FALSE(b.AddSymlink("a/link", "/etc/passwd", 0, 0).ok());
  EXPECT_FALSE(b.AddSymlink("a/link", "../../x", 0, 0).ok());
  EXPECT_TRUE(b.AddSymlink("a/link", "../x", 0, 0).ok());
  EXPECT_FALSE(b.AddFile("a/../x", Sha256Hex(""), 0, 0644, 0, 0).ok());
  EXPECT_FALSE(b.AddFile("a/link", Sha256Hex(""), 0, 0644, 0, 0).ok()) << "given twice";
}

TEST(SnapshotTree, WalkVisitsEveryEntryAndCatchesATamperedDirectory) {
  SnapshotTree tree = Small("zz");
  auto lookup = [&](const std::string& digest) -> absl::StatusOr<std::string> {
    auto it = tree.directories.find(digest);
    if (it == tree.directories.end()) return absl::NotFoundError(digest);
    return it->second;
  };
  std::vector<std::string> paths;
  ASSERT_TRUE(WalkSnapshot(tree.root, lookup, [&](const std::string& p, const v1::SnapshotEntry&) {
                paths.push_back(p);
              }).ok());
  EXPECT_THAT(paths, ElementsAre("deps", "deps/a.whl", "deps/latest", "deps/z.whl", "empty"));
  tree.directories[tree.root] += "x";
  absl::Status st = WalkSnapshot(tree.root, lookup, [](const std::string&, const v1::SnapshotEntry&) {});
  EXPECT_TRUE(absl::IsDataLoss(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr(tree.root));
}

}  // namespace
}  // namespace dockyard
