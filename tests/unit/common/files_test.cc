#include "common/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using testing::FreshDir;

// A file of `size` bytes last used `age` ago.
void Put(const std::string& dir, const std::string& name, size_t size, std::chrono::seconds age) {
  std::ofstream(dir + "/" + name, std::ios::binary) << std::string(size, 'x');
  fs::last_write_time(dir + "/" + name, fs::file_time_type::clock::now() - age);
}

TEST(TrimDirectory, RemovesTheLeastRecentlyUsedUntilUnderTheBoundAndSparesTheKept) {
  const std::string dir = FreshDir();
  Put(dir, "oldest", 100, std::chrono::seconds(300));
  Put(dir, "busy", 100, std::chrono::seconds(200));  // older, but in use
  Put(dir, "older", 100, std::chrono::seconds(100));
  Put(dir, "newest", 100, std::chrono::seconds(0));
  fs::create_directory(dir + "/subdir");  // not a file: never counted or removed

  EXPECT_EQ(TrimDirectory(dir, 250, {"busy"}), 200);
  EXPECT_FALSE(fs::exists(dir + "/oldest"));
  EXPECT_FALSE(fs::exists(dir + "/older"));
  EXPECT_TRUE(fs::exists(dir + "/busy"));
  EXPECT_TRUE(fs::exists(dir + "/newest"));
  EXPECT_TRUE(fs::exists(dir + "/subdir"));
}

TEST(TrimDirectory, UnderTheBoundOrWithoutOneNothingGoes) {
  const std::string dir = FreshDir();
  Put(dir, "a", 100, std::chrono::seconds(10));
  Put(dir, "b", 100, std::chrono::seconds(5));
  EXPECT_EQ(TrimDirectory(dir, 200), 0);
  EXPECT_EQ(TrimDirectory(dir, 0), 0);  // 0 = no bound
  EXPECT_TRUE(fs::exists(dir + "/a") && fs::exists(dir + "/b"));
  EXPECT_EQ(TrimDirectory(dir + "/missing", 1), 0);
}

}  // namespace
}  // namespace dockyard
