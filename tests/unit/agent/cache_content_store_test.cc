#include "agent/cache_content_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <utime.h>

#include <filesystem>
#include <fstream>

#include "common/sha256.h"
#include "common/tar_archive.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A tar shaped like Docker's archive of the mount path `/build`: entries "build/...".
std::string DockerTarOf(const std::string& dir, const std::string& scratch) {
  const std::string packed = scratch + "/packed.tar";
  const std::string prefixed = scratch + "/docker.tar";
  EXPECT_TRUE(PackDirectory(dir, packed).ok());
  EXPECT_TRUE(PrefixTar(packed, "build/", prefixed).ok());
  return prefixed;
}

// A cache like pip's: wheels (two identical), a nested empty directory, a link.
std::string MakeCache(const std::string& root) {
  const std::string dir = root + "/cache";
  Write(dir + "/wheels/a-1.0.whl", "wheel a");
  Write(dir + "/wheels/b-2.0.whl", "wheel b");
  Write(dir + "/copy/a-1.0.whl", "wheel a");
  Write(dir + "/bin/run.sh", "#!/bin/sh\n");
  ::chmod((dir + "/bin/run.sh").c_str(), 0755);
  fs::create_directories(dir + "/empty/inner");
  fs::create_symlink("../wheels/a-1.0.whl", dir + "/bin/latest.whl");
  fs::create_symlink("/etc/passwd", dir + "/bin/outside");
  return dir;
}

TEST(CacheContentStore, SnapshotNamesContentNotTimesAndStoresEachFileOnce) {
  const std::string root = testing::FreshDir();
  const std::string cache = MakeCache(root);
  CacheContentStore store(root + "/cas");
  std::vector<std::string> skipped;
  auto first = store.Take(DockerTarOf(cache, root), &skipped);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(skipped, ElementsAre("bin/outside")) << "a link leading out of the cache stays out";
  EXPECT_EQ(first->file_count, 4);
  EXPECT_EQ(first->files.size(), 3u) << "identical wheels are one file";
  EXPECT_TRUE(store.Has(first->root));

  // New modification times, same content: the same snapshot.
  ::utime((cache + "/wheels/b-2.0.whl").c_str(), nullptr);
  skipped.clear();
  auto again = store.Take(DockerTarOf(cache, root), &skipped);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->root, first->root);

  // One changed wheel: a new root, and every other file shared.
  Write(cache + "/wheels/b-2.0.whl", "wheel b, rebuilt");
  auto changed = store.Take(DockerTarOf(cache, root), &skipped);
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->root, first->root);
  int shared = 0;
  for (const auto& [digest, size] : changed->files) shared += first->files.count(digest) ? 1 : 0;
  EXPECT_EQ(shared, 2);

  // A mode is part of it too.
  ::chmod((cache + "/bin/run.sh").c_str(), 0700);
  auto chmodded = store.Take(DockerTarOf(cache, root), &skipped);
  ASSERT_TRUE(chmodded.ok());
  EXPECT_NE(chmodded->root, changed->root);
}

TEST(CacheContentStore, RestoreTarRebuildsTheSameSnapshot) {
  const std::string root = testing::FreshDir();
  CacheContentStore store(root + "/cas");
  std::vector<std::string> skipped;
  auto taken = store.Take(DockerTarOf(MakeCache(root), root), &skipped);
  ASSERT_TRUE(taken.ok());
  const std::string restore = root + "/restore.tar";
  ASSERT_TRUE(store.WriteRestoreTar(taken->root, restore).ok());
  // Read back as Docker would hand the restored volume over.
  ASSERT_TRUE(PrefixTar(restore, "build/", root + "/again.tar").ok());
  auto round_trip = store.Take(root + "/again.tar", &skipped);
  ASSERT_TRUE(round_trip.ok()) << round_trip.status();
  EXPECT_EQ(round_trip->root, taken->root);
}

TEST(CacheContentStore, AFlippedByteIsCaughtNamingTheDigestAndNothingIsWritten) {
  const std::string root = testing::FreshDir();
  CacheContentStore store(root + "/cas");
  std::vector<std::string> skipped;
  auto taken = store.Take(DockerTarOf(MakeCache(root), root), &skipped);
  ASSERT_TRUE(taken.ok());
  const std::string victim = taken->files.begin()->first;
  {
    std::fstream f(store.PathOf(victim), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put('X');
  }
  const std::string restore = root + "/restore.tar";
  absl::Status st = store.WriteRestoreTar(taken->root, restore);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(victim));
  EXPECT_FALSE(fs::exists(restore));
  // Content that does not match its name never enters the store.
  EXPECT_TRUE(absl::IsDataLoss(store.Put(std::string(64, 'a'), "not that")));
}

TEST(CacheContentStore, TrimDropsTheLeastRecentlyUsedPartsFirst) {
  const std::string root = testing::FreshDir();
  CacheContentStore store(root + "/cas");
  const std::string old_part = std::string(1000, 'o'), new_part = std::string(1000, 'n');
  ASSERT_TRUE(store.Put(Sha256Hex(old_part), old_part).ok());
  ASSERT_TRUE(store.Put(Sha256Hex(new_part), new_part).ok());
  struct timespec times[2] = {{1000, 0}, {1000, 0}};  // long ago
  ASSERT_EQ(::utimensat(AT_FDCWD, store.PathOf(Sha256Hex(old_part)).c_str(), times, 0), 0);
  EXPECT_EQ(store.Trim(0), 0) << "0 = no limit";
  EXPECT_EQ(store.Trim(1500), 1000);
  EXPECT_FALSE(store.Has(Sha256Hex(old_part)));
  EXPECT_TRUE(store.Has(Sha256Hex(new_part)));
}

}  // namespace
}  // namespace dockyard
