#include "controller/log_store.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

#include "controller/file_log_backend.h"
#include "tests/support/scratch_dir.h"
#include "tests/unit/controller/log_store_contract.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

using ::dockyard::testing::FreshDir;
using ::dockyard::testing::LogStoreContract;

v1::StageRef Ref(const std::string& run, const std::string& stage, int attempt) {
  v1::StageRef ref;
  ref.set_run_id(run);
  ref.set_stage(stage);
  ref.set_attempt(attempt);
  return ref;
}

std::string FileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string ReadAll(LogStore& store, const v1::StageRef& ref) {
  absl::StatusOr<LogStore::Slice> slice = store.Read(ref, 0, 1 << 20);
  EXPECT_TRUE(slice.ok()) << slice.status();
  return slice.ok() ? slice->data : "";
}

TEST(LogStore, AttemptsAndStagesAreSeparateFiles) {
  const std::string dir = FreshDir();
  LogStore store(dir);
  ASSERT_TRUE(store.Append(Ref("1", "build", 1), 0, "first try\n").ok());
  ASSERT_TRUE(store.Append(Ref("1", "build", 2), 0, "second try\n").ok());
  ASSERT_TRUE(store.Append(Ref("1", "test", 1), 0, "tests\n").ok());
  ASSERT_TRUE(store.Append(Ref("2", "build", 1), 0, "other run\n").ok());

  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "first try\n");
  EXPECT_EQ(FileContents(dir + "/1/build.2.log"), "second try\n");
  EXPECT_EQ(FileContents(dir + "/1/test.1.log"), "tests\n");
  EXPECT_EQ(FileContents(dir + "/2/build.1.log"), "other run\n");
  EXPECT_EQ(store.NextSeq(Ref("1", "build", 2)), 1);

  // Closing one attempt leaves the others open.
  store.Close(Ref("1", "build", 1));
  EXPECT_TRUE(store.Append(Ref("1", "build", 2), 1, "more\n").ok());
}

// The contract every log backend meets (log_store_contract.cc), on files.
INSTANTIATE_TEST_SUITE_P(Files, LogStoreContract,
                         ::testing::Values(testing::LogStoreBackend{
                             "files",
                             [] {
                               return [dir = FreshDir()]() -> std::unique_ptr<LogBackend> {
                                 return std::make_unique<FileLogBackend>(dir);
                               };
                             }}),
                         [](const auto& info) { return info.param.name; });

// --- crash safety: the .idx sidecar (once the agent sent a chunk) ---

void AppendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

TEST(LogStore, TornTailIsDroppedAfterARestart) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
    ASSERT_TRUE(store.Append(ref, 1, "two\n").ok());
  }
  // The process died in the middle of writing chunk 2: part of it is in the log,
  // its index record is not.
  AppendBytes(dir + "/1/build.1.log", "thr");

  LogStore store(dir);
  EXPECT_EQ(store.NextSeq(ref), 2);
  absl::StatusOr<LogStore::Slice> slice = store.Read(ref, 0, 100);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->size, 8);
  EXPECT_EQ(slice->data, "one\ntwo\n");
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\ntwo\n");

  // The agent never got an ack for chunk 2 and sends it again: it lands cleanly.
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\ntwo\nthree\n");
}

TEST(LogStore, TornIndexRecordIsIgnoredAfterARestart) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  }
  AppendBytes(dir + "/1/build.1.log", "two\n");
  AppendBytes(dir + "/1/build.1.idx", std::string(5, '\x01'));  // part of chunk 1's record

  LogStore store(dir);
  EXPECT_EQ(store.NextSeq(ref), 1);
  EXPECT_EQ(store.Read(ref, 0, 100)->size, 4);
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\ntwo\nthree\n");

  LogStore again(dir);
  EXPECT_EQ(again.NextSeq(ref), 3);
  EXPECT_EQ(ReadAll(again, ref), "one\ntwo\nthree\n");
}

TEST(LogStore, SystemLinesSurviveARestartWithoutUsingSequenceNumbers) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.AppendSystemLine(ref, "attempt 1 on agent a1").ok());
    ASSERT_TRUE(store.Append(ref, 0, "out\n").ok());
    ASSERT_TRUE(store.AppendSystemLine(ref, "agent went quiet").ok());
  }
  AppendBytes(dir + "/1/build.1.log", "torn");

  LogStore store(dir);
  EXPECT_EQ(store.NextSeq(ref), 1);
  const std::string expected = "[dockyard] attempt 1 on agent a1\nout\n[dockyard] agent went quiet\n";
  EXPECT_EQ(ReadAll(store, ref), expected);
  EXPECT_EQ(*store.Append(ref, 1, "more\n"), 2);
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), expected + "more\n");
}

TEST(LogStore, AnAttemptWithOnlySystemLinesHasNoIndexAndKeepsItsWholeLinesAfterARestart) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.AppendSystemLine(ref, "attempt 1 on agent a1").ok());
    ASSERT_TRUE(store.AppendSystemLine(ref, "agent went quiet").ok());
  }
  EXPECT_FALSE(fs::exists(dir + "/1/build.1.idx"));
  AppendBytes(dir + "/1/build.1.log", "[dockyard] torn li");

  LogStore store(dir);
  EXPECT_EQ(store.NextSeq(ref), 0);
  const std::string expected = "[dockyard] attempt 1 on agent a1\n[dockyard] agent went quiet\n";
  EXPECT_EQ(ReadAll(store, ref), expected);
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), expected);
  EXPECT_EQ(*store.Append(ref, 0, "out\n"), 1);
  EXPECT_TRUE(fs::exists(dir + "/1/build.1.idx"));

  LogStore again(dir);
  EXPECT_EQ(again.NextSeq(ref), 1);
  EXPECT_EQ(ReadAll(again, ref), expected + "out\n");
}

TEST(LogStore, AFirstChunkCutShortAfterSystemLinesIsDroppedAndTheLinesStay) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.AppendSystemLine(ref, "attempt 1 on agent a1").ok());
    ASSERT_TRUE(store.Append(ref, 0, "out\n").ok());
  }
  // The process died writing chunk 0's data: the index already covers the system
  // line, not the chunk's whole lines.
  fs::resize_file(dir + "/1/build.1.idx", 16);
  LogStore store(dir);
  EXPECT_EQ(store.NextSeq(ref), 0);
  EXPECT_EQ(ReadAll(store, ref), "[dockyard] attempt 1 on agent a1\n");
  EXPECT_EQ(*store.Append(ref, 0, "out\n"), 1);
  EXPECT_EQ(ReadAll(store, ref), "[dockyard] attempt 1 on agent a1\nout\n");
}

TEST(LogStore, LogWithoutAnyIndexRecordReadsEmptyAfterARestart) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  // The first chunk's data was being written when the process died.
  fs::create_directories(dir + "/1");
  AppendBytes(dir + "/1/build.1.log", "half a li");

  LogStore store(dir);
  EXPECT_EQ(store.NextSeq(ref), 0);
  EXPECT_EQ(store.Read(ref, 0, 100)->size, 0);
  EXPECT_EQ(*store.Append(ref, 0, "whole line\n"), 1);
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "whole line\n");
}

}  // namespace
}  // namespace dockyard
