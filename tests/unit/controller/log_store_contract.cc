#include "tests/unit/controller/log_store_contract.h"

#include <string>

#include "controller/log_store.h"

namespace dockyard::testing {
namespace {

v1::StageRef Ref(const std::string& run, const std::string& stage, int attempt) {
  v1::StageRef ref;
  ref.set_run_id(run);
  ref.set_stage(stage);
  ref.set_attempt(attempt);
  return ref;
}

std::string ReadAll(LogStore& store, const v1::StageRef& ref) {
  absl::StatusOr<LogStore::Slice> slice = store.Read(ref, 0, 1 << 20);
  EXPECT_TRUE(slice.ok()) << slice.status();
  return slice.ok() ? slice->data : "";
}

TEST_P(LogStoreContract, AppendsChunksInSequenceOrder) {
  const auto open = GetParam().fresh();
  LogStore store(open());
  const v1::StageRef ref = Ref("1", "build", 1);

  EXPECT_EQ(store.NextSeq(ref), 0);
  EXPECT_EQ(*store.Append(ref, 0, "one\n"), 1);
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(store.NextSeq(ref), 3);

  EXPECT_EQ(ReadAll(store, ref), "one\ntwo\nthree\n");
  EXPECT_EQ(ReadAll(store, Ref("1", "build", 1)), "one\ntwo\nthree\n");
}

TEST_P(LogStoreContract, DuplicateChunkIsIgnored) {
  const auto open = GetParam().fresh();
  LogStore store(open());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  ASSERT_TRUE(store.Append(ref, 1, "two\n").ok());

  absl::StatusOr<int64_t> next = store.Append(ref, 0, "one\n");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 2);
  next = store.Append(ref, 1, "something else\n");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 2);

  EXPECT_EQ(ReadAll(store, Ref("1", "build", 1)), "one\ntwo\n");
  EXPECT_EQ(store.Read(ref, 0, 100)->size, 8);
}

TEST_P(LogStoreContract, GapIsFailedPrecondition) {
  const auto open = GetParam().fresh();
  LogStore store(open());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());

  absl::StatusOr<int64_t> next = store.Append(ref, 2, "three\n");
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.NextSeq(ref), 1);
  EXPECT_EQ(ReadAll(store, Ref("1", "build", 1)), "one\n");

  // Resending from the expected number fills the gap.
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(ReadAll(store, ref), "one\ntwo\nthree\n");
}

TEST_P(LogStoreContract, GapInANewAttemptIsFailedPrecondition) {
  LogStore store(GetParam().fresh()());
  EXPECT_EQ(store.Append(Ref("1", "build", 1), 1, "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(LogStoreContract, ReadsByOffsetAndMaxBytes) {
  LogStore store(GetParam().fresh()());
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

TEST_P(LogStoreContract, ReadOfAnAttemptWithoutOutputIsEmpty) {
  LogStore store(GetParam().fresh()());
  absl::StatusOr<LogStore::Slice> slice = store.Read(Ref("1", "quiet", 1), 0, 100);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->data, "");
  EXPECT_EQ(slice->size, 0);
  EXPECT_FALSE(slice->closed);
}

TEST_P(LogStoreContract, ReadReportsClosedOnceTheAttemptIsClosed) {
  LogStore store(GetParam().fresh()());
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

TEST_P(LogStoreContract, AppendAfterCloseIsRefused) {
  const auto open = GetParam().fresh();
  LogStore store(open());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  store.Close(ref);

  EXPECT_EQ(store.Append(ref, 1, "late\n").status().code(), absl::StatusCode::kFailedPrecondition);
  // A resend of what was stored before is still acknowledged.
  EXPECT_EQ(*store.Append(ref, 0, "one\n"), 1);
  // System lines after the end are dropped, not appended.
  EXPECT_TRUE(store.AppendSystemLine(ref, "late note").ok());
  EXPECT_EQ(ReadAll(store, Ref("1", "build", 1)), "one\n");
}

TEST_P(LogStoreContract, SystemLinesAreMarkedAndDoNotUseSequenceNumbers) {
  LogStore store(GetParam().fresh()());
  const v1::StageRef ref = Ref("1", "build", 1);
  ASSERT_TRUE(store.AppendSystemLine(ref, "skipped: needs lint").ok());
  ASSERT_TRUE(store.Append(ref, 0, "out\n").ok());
  EXPECT_EQ(ReadAll(store, ref), "[dockyard] skipped: needs lint\nout\n");
  EXPECT_EQ(store.NextSeq(ref), 1);
}

TEST_P(LogStoreContract, ANewStoreOverTheSameLogsSeesTheExistingSize) {
  const auto open = GetParam().fresh();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(open());
    ASSERT_TRUE(store.Append(ref, 0, "before restart\n").ok());
  }
  LogStore store(open());
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

TEST_P(LogStoreContract, ResendOfAChunkStoredBeforeARestartIsNotDuplicated) {
  const auto open = GetParam().fresh();
  const v1::StageRef ref = Ref("1", "build", 1);
  {
    LogStore store(open());
    ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
    ASSERT_TRUE(store.Append(ref, 1, "two\n").ok());
  }
  LogStore store(open());
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 2);
  EXPECT_EQ(*store.Append(ref, 2, "three\n"), 3);
  EXPECT_EQ(ReadAll(store, ref), "one\ntwo\nthree\n");
}

TEST_P(LogStoreContract, WatchAFollowerIsWokenOnceByNewDataOrTheClose) {
  LogStore store(GetParam().fresh()());
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

TEST_P(LogStoreContract, WatchAWatchTakenBackNeverFires) {
  LogStore store(GetParam().fresh()());
  const v1::StageRef ref = Ref("1", "build", 1);
  bool woken = false;
  const uint64_t id = store.Watch(ref, 0, [&] { woken = true; });
  EXPECT_TRUE(store.Unwatch(id));
  ASSERT_TRUE(store.Append(ref, 0, "x").ok());
  store.Close(ref);
  EXPECT_FALSE(woken);
}

TEST_P(LogStoreContract, RemovingARunDeletesItsLogsOnly) {
  const auto open = GetParam().fresh();
  {
    LogStore store(open());
    ASSERT_TRUE(store.Append(Ref("1", "build", 1), 0, "gone\n").ok());
    ASSERT_TRUE(store.Append(Ref("1", "build", 2), 0, "gone too\n").ok());
    ASSERT_TRUE(store.Append(Ref("2", "build", 1), 0, "kept\n").ok());
    store.Close(Ref("1", "build", 1));
    GetParam().settle(store.backend());
    ASSERT_TRUE(store.RemoveRun("1").ok());
    EXPECT_EQ(store.Read(Ref("1", "build", 1), 0, 100)->size, 0);
  }
  LogStore store(open());
  EXPECT_EQ(store.Read(Ref("1", "build", 1), 0, 100)->size, 0);
  EXPECT_EQ(store.Read(Ref("1", "build", 2), 0, 100)->size, 0);
  EXPECT_EQ(ReadAll(store, Ref("2", "build", 1)), "kept\n");
}

TEST_P(LogStoreContract, ASettledLogReadsTheSameAfterItsArchiveAndAfterARestart) {
  const auto open = GetParam().fresh();
  const v1::StageRef ref = Ref("7", "build", 2);
  const std::string expected = "[dockyard] attempt 2 on agent a1\none\ntwo\nthree\n";
  std::string big(200000, 'x');  // more than one read's worth
  {
    LogStore store(open());
    ASSERT_TRUE(store.AppendSystemLine(ref, "attempt 2 on agent a1").ok());
    for (const auto& [seq, line] : {std::pair{0, "one\n"}, {1, "two\n"}, {2, "three\n"}}) {
      ASSERT_TRUE(store.Append(ref, seq, line).ok());
    }
    ASSERT_TRUE(store.Append(ref, 3, big).ok());
    ASSERT_TRUE(store.Append(Ref("7", "test", 1), 0, "still running\n").ok());
    store.Close(ref);
    GetParam().settle(store.backend());
    EXPECT_EQ(ReadAll(store, ref), expected + big);
    EXPECT_EQ(store.Read(ref, 41, 6)->data, "three\n");
    EXPECT_TRUE(store.Read(ref, 0, 5)->closed);
  }
  LogStore store(open());
  EXPECT_EQ(store.NextSeq(ref), 4);
  EXPECT_EQ(*store.Append(ref, 1, "two\n"), 4);  // a late resend: acknowledged, not stored
  EXPECT_EQ(store.Read(ref, 0, 1 << 20)->size, static_cast<int64_t>(expected.size() + big.size()));
  EXPECT_EQ(ReadAll(store, ref), expected + big);
  EXPECT_EQ(ReadAll(store, Ref("7", "test", 1)), "still running\n");  // not settled: untouched
  EXPECT_EQ(*store.Append(Ref("7", "test", 1), 1, "more\n"), 2);
}

}  // namespace
}  // namespace dockyard::testing
