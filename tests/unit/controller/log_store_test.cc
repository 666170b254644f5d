#include "controller/log_store.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

using ::dockyard::testing::FreshDir;

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

TEST(LogStore, AppendsChunksInSequenceOrder) {
  const std::string dir = FreshDir();
  LogStore store(dir);
  const v1::StageRef ref = Ref("1", "build", 1);

  EXPECT_EQ(store.NextSeq(ref), 0);
  EXPECT_EQ(*store.Append(ref, 0, "one\n"), 1);
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(store.NextSeq(ref), 3);

  EXPECT_EQ(ReadAll(store, ref), "one\ntwo\nthree\n");
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\ntwo\nthree\n");
}

TEST(LogStore, DuplicateChunkIsIgnored) {
  const std::string dir = FreshDir();
  LogStore store(dir);
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  ASSERT_TRUE(store.Append(ref, 1, "two\n").ok());

  absl::StatusOr<int64_t> next = store.Append(ref, 0, "one\n");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 2);
  next = store.Append(ref, 1, "something else\n");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 2);

  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\ntwo\n");
  EXPECT_EQ(store.Read(ref, 0, 100)->size, 8);
}

TEST(LogStore, GapIsFailedPrecondition) {
  const std::string dir = FreshDir();
  LogStore store(dir);
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());

  absl::StatusOr<int64_t> next = store.Append(ref, 2, "three\n");
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.NextSeq(ref), 1);
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\n");

  // Resending from the expected number fills the gap.
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(ReadAll(store, ref), "one\ntwo\nthree\n");
}

TEST(LogStore, GapInANewAttemptIsFailedPrecondition) {
  LogStore store(FreshDir());
  EXPECT_EQ(store.Append(Ref("1", "build", 1), 1, "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(LogStore, ReadsByOffsetAndMaxBytes) {
  LogStore store(FreshDir());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "0123456789").ok());

  absl::StatusOr<LogStore::Slice> slice = store.Read(ref, 2, 5);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->data, "23456");
  EXPECT_EQ(slice->size, 10);
  EXPECT_FALSE(slice->closed);

  slice = store.Read(ref, 7, 100);
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ(slice->data, "789");

  slice = store.Read(ref, 10, 100);  // at the end: nothing yet
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ(slice->data, "");
  EXPECT_EQ(slice->size, 10);

  EXPECT_EQ(store.Read(ref, 11, 100).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store.Read(ref, -1, 100).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(LogStore, ReadOfAnAttemptWithoutOutputIsEmpty) {
  LogStore store(FreshDir());
  absl::StatusOr<LogStore::Slice> slice = store.Read(Ref("1", "quiet", 1), 0, 100);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->data, "");
  EXPECT_EQ(slice->size, 0);
  EXPECT_FALSE(slice->closed);
}

TEST(LogStore, ReadReportsClosedOnceTheAttemptIsClosed) {
  LogStore store(FreshDir());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "done\n").ok());
  EXPECT_FALSE(store.Read(ref, 0, 100)->closed);

  store.Close(ref);
  absl::StatusOr<LogStore::Slice> slice = store.Read(ref, 0, 100);
  ASSERT_TRUE(slice.ok());
  EXPECT_TRUE(slice->closed);
  EXPECT_EQ(slice->data, "done\n");
  // A partial read of a closed log is still closed: the size is final.
  EXPECT_TRUE(store.Read(ref, 0, 2)->closed);
}

TEST(LogStore, AppendAfterCloseIsRefused) {
  const std::string dir = FreshDir();
  LogStore store(dir);
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  store.Close(ref);

  EXPECT_EQ(store.Append(ref, 1, "late\n").status().code(), absl::StatusCode::kFailedPrecondition);
  // A resend of what was stored before is still acknowledged.
  EXPECT_EQ(*store.Append(ref, 0, "one\n"), 1);
  // System lines after the end are dropped, not appended.
  EXPECT_TRUE(store.AppendSystemLine(ref, "late note").ok());
  EXPECT_EQ(FileContents(dir + "/1/build.1.log"), "one\n");
}

TEST(LogStore, SystemLinesAreMarkedAndDoNotUseSequenceNumbers) {
  LogStore store(FreshDir());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.AppendSystemLine(ref, "skipped: needs lint").ok());
  ASSERT_TRUE(store.Append(ref, 0, "out\n").ok());
  EXPECT_EQ(ReadAll(store, ref), "[dockyard] skipped: needs lint\nout\n");
  EXPECT_EQ(store.NextSeq(ref), 1);
}

TEST(LogStore, NewStoreOverTheSameDirSeesTheExistingSize) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.Append(ref, 0, "before restart\n").ok());
  }
  LogStore store(dir);
  absl::StatusOr<LogStore::Slice> slice = store.Read(ref, 7, 100);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->size, 15);
  EXPECT_EQ(slice->data, "restart\n");
  EXPECT_EQ(store.NextSeq(ref), 1) << "a resend of chunk 0 must not be stored twice";

  // New data lands after what was there, at the offsets readers already know.
  ASSERT_TRUE(store.AppendSystemLine(ref, "controller restarted").ok());
  slice = store.Read(ref, 15, 100);
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ(slice->data, "[dockyard] controller restarted\n");
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

// --- crash safety: the .idx sidecar ---

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

TEST(LogStore, ResendOfAChunkStoredBeforeARestartIsNotDuplicated) {
  const std::string dir = FreshDir();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(dir);
    ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
    ASSERT_TRUE(store.Append(ref, 1, "two\n").ok());
  }
  LogStore store(dir);
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(ReadAll(store, ref), "one\ntwo\nthree\n");
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

TEST(LogStoreWatch, AFollowerIsWokenOnceByNewDataOrTheClose) {
  LogStore store(FreshDir());
  const v1::StageRef ref = Ref("1", "build", 1);
  int woken = 0;
  const uint64_t id = store.Watch(ref, 0, [&] { ++woken; });
  EXPECT_NE(id, 0u);
  EXPECT_EQ(woken, 0);
  ASSERT_TRUE(store.Append(ref, 0, "hello\n").ok());
  EXPECT_EQ(woken, 1);
  ASSERT_TRUE(store.Append(ref, 1, "again\n").ok());
  EXPECT_EQ(woken, 1);  // once
  EXPECT_FALSE(store.Unwatch(id));  // it fired

  // Already past the offset: woken at once.
  EXPECT_EQ(store.Watch(ref, 6, [&] { ++woken; }), 0u);
  EXPECT_EQ(woken, 2);

  // At the end: the close wakes it (the log is final).
  store.Watch(ref, 12, [&] { ++woken; });
  store.Close(ref);
  EXPECT_EQ(woken, 3);
}

TEST(LogStoreWatch, AWatchTakenBackNeverFires) {
  LogStore store(FreshDir());
  const v1::StageRef ref = Ref("1", "build", 1);
  bool woken = false;
  const uint64_t id = store.Watch(ref, 0, [&] { woken = true; });
  EXPECT_TRUE(store.Unwatch(id));
  ASSERT_TRUE(store.Append(ref, 0, "x").ok());
  store.Close(ref);
  EXPECT_FALSE(woken);
}

}  // namespace
}  // namespace dockyard
