#include "common/blob_receiver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/sha256.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using testing::FreshDir;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t Entries(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(ReceivedFile, NothingIsInTheDirectoryUntilTheVerifiedCommit) {
  const std::string dir = FreshDir();
  ReceivedFile file(dir + "/wheel.whl");
  file.Append("first half, ");
  file.Append("second half");
  EXPECT_EQ(Entries(dir), 0u) << "no temp file while receiving";
  ASSERT_TRUE(file.Commit(Sha256Hex("first half, second half"), 23).ok());
  EXPECT_EQ(Read(dir + "/wheel.whl"), "first half, second half");
  EXPECT_EQ(Entries(dir), 1u);
}

TEST(ReceivedFile, ContentNotMatchingItsDigestOrSizeIsDataLossAndLeavesNothing) {
  const std::string dir = FreshDir();
  {
    ReceivedFile file(dir + "/a");
    file.Append("tampered");
    const absl::Status st = file.Commit(Sha256Hex("original"), 8);
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
    EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(dir + "/a"));
  }
  {
    ReceivedFile file(dir + "/b");
    file.Append("short");
    EXPECT_EQ(file.Commit(Sha256Hex("short"), 6).code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_EQ(Entries(dir), 0u);
}

TEST(ReceivedFile, ACommitReplacesAFileAlreadyThereAndLeavesNoTempFile) {
  const std::string dir = FreshDir();
  std::ofstream(dir + "/app.whl") << "last run's wheel";
  ReceivedFile file(dir + "/app.whl");
  file.Append("this run's wheel");
  ASSERT_TRUE(file.Commit(Sha256Hex("this run's wheel"), -1).ok());
  EXPECT_EQ(Read(dir + "/app.whl"), "this run's wheel");
  EXPECT_EQ(Entries(dir), 1u);
}

TEST(ReceivedFile, DroppedBeforeItsCommitItLeavesNothing) {
  const std::string dir = FreshDir();
  { ReceivedFile(dir + "/cut").Append("half of it"); }
  EXPECT_EQ(Entries(dir), 0u);
}

TEST(ReceivedFile, AnEmptyFileIsAFileToo) {
  const std::string dir = FreshDir();
  ReceivedFile file(dir + "/empty");
  ASSERT_TRUE(file.Commit(Sha256Hex(""), 0).ok());
  EXPECT_TRUE(fs::is_regular_file(dir + "/empty"));
  EXPECT_EQ(fs::file_size(dir + "/empty"), 0u);
}

TEST(ReceivedFile, ADirectoryThatDoesNotExistIsAnErrorNamingTheFile) {
  const std::string dir = FreshDir();
  ReceivedFile file(dir + "/missing/x");
  file.Append("data");
  const absl::Status st = file.Commit(Sha256Hex("data"), 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(dir + "/missing/x"));
}

}  // namespace
}  // namespace dockyard
