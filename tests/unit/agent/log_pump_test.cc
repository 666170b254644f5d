#include "agent/log_pump.h"

#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::StageRef TestRef() {
  v1::StageRef ref;
  ref.set_run_id("7");
  ref.set_stage("build");
  ref.set_attempt(2);
  return ref;
}

// A chunk flattened for readable expectations.
struct Chunk {
  int64_t seq;
  v1::LogStream stream;
  std::string data;
  bool operator==(const Chunk&) const = default;
};

void PrintTo(const Chunk& c, std::ostream* os) {
  *os << "{" << c.seq << ", " << v1::LogStream_Name(c.stream) << ", \"" << c.data << "\"}";
}

// Records every batch the pump sends.
class Recorder {
 public:
  LogPump::Sender sender() {
    return [this](v1::LogBatch batch) { batches_.push_back(std::move(batch)); };
  }
  const std::vector<v1::LogBatch>& batches() const { return batches_; }
  // All chunks sent so far, in send order.
  std::vector<Chunk> chunks() const {
    std::vector<Chunk> out;
    for (const v1::LogBatch& batch : batches_) {
      for (const v1::LogChunk& c : batch.chunks()) out.push_back({c.seq(), c.stream(), c.data()});
    }
    return out;
  }
  // Everything sent for one stream, concatenated.
  std::string text(v1::LogStream stream) const {
    std::string out;
    for (const Chunk& c : chunks()) {
      if (c.stream == stream) out += c.data;
    }
    return out;
  }
  void clear() { batches_.clear(); }

 private:
  std::vector<v1::LogBatch> batches_;
};

TEST(LogPump, HoldsAPartialLineUntilItsNewline) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());

  pump.Write(OutputStream::kStdout, "hel");
  pump.Flush();
  EXPECT_THAT(sent.batches(), IsEmpty());

  pump.Write(OutputStream::kStdout, "lo\nwor");
  pump.Flush();
  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{0, v1::LOG_STDOUT, "hello\n"}));

  pump.Write(OutputStream::kStdout, "ld\n");
  pump.Flush();
  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{0, v1::LOG_STDOUT, "hello\n"},
                                         Chunk{1, v1::LOG_STDOUT, "world\n"}));
}

TEST(LogPump, BatchesCarryTheAttemptTheyBelongTo) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());
  pump.Write(OutputStream::kStdout, "a\n");
  pump.Flush();
  pump.Write(OutputStream::kStdout, "b\n");
  pump.Flush();
  ASSERT_EQ(sent.batches().size(), 2u);
  for (const v1::LogBatch& batch : sent.batches()) {
    EXPECT_EQ(batch.stage().run_id(), "7");
    EXPECT_EQ(batch.stage().stage(), "build");
    EXPECT_EQ(batch.stage().attempt(), 2);
  }
  EXPECT_EQ(pump.ref().stage(), "build");
}

TEST(LogPump, StdoutAndStderrPartialLinesNeverMix) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());

  pump.Write(OutputStream::kStdout, "out-");
  pump.Write(OutputStream::kStderr, "err-");
  pump.Write(OutputStream::kStdout, "line\n");
  pump.Write(OutputStream::kStderr, "line\n");
  pump.Flush();

  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{0, v1::LOG_STDOUT, "out-line\n"},
                                         Chunk{1, v1::LOG_STDERR, "err-line\n"}));
}

TEST(LogPump, SequenceNumbersAreConsecutiveFromZeroAcrossBatches) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());
  for (int i = 0; i < 5; ++i) {
    pump.Write(i % 2 == 0 ? OutputStream::kStdout : OutputStream::kStderr, "line\n");
    pump.WriteSystemLine("note");
    pump.Flush();
  }
  pump.Write(OutputStream::kStdout, "tail");
  pump.Finish();

  ASSERT_EQ(sent.batches().size(), 6u);
  std::vector<Chunk> chunks = sent.chunks();
  ASSERT_EQ(chunks.size(), 11u);
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].seq, static_cast<int64_t>(i));
}

TEST(LogPump, FlushSendsOnlyWholeLinesAndFinishSendsPartialLastLinesToo) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());
  pump.Write(OutputStream::kStdout, "one\ntwo\nthr");
  pump.Write(OutputStream::kStderr, "warn\npartial-err");
  pump.Flush();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "one\ntwo\n");
  EXPECT_EQ(sent.text(v1::LOG_STDERR), "warn\n");

  // A flush with nothing new sends nothing.
  const size_t batches = sent.batches().size();
  pump.Flush();
  EXPECT_EQ(sent.batches().size(), batches);

  pump.Finish();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "one\ntwo\nthr");
  EXPECT_EQ(sent.text(v1::LOG_STDERR), "warn\npartial-err");
}

TEST(LogPump, SendsABatchOnceMaxBatchBytesIsReached) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {.max_batch_bytes = 10, .max_line_bytes = 1024});

  pump.Write(OutputStream::kStdout, "12345\n");  // 6 bytes: below the batch size
  EXPECT_THAT(sent.batches(), IsEmpty());
  pump.Write(OutputStream::kStderr, "678\n");  // 10 bytes: the batch is full
  ASSERT_EQ(sent.batches().size(), 1u);
  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{0, v1::LOG_STDOUT, "12345\n"},
                                         Chunk{1, v1::LOG_STDERR, "678\n"}));

  // Partial lines do not count towards a batch.
  pump.Write(OutputStream::kStdout, "0123456789abcdef");
  EXPECT_EQ(sent.batches().size(), 1u);
}

TEST(LogPump, EndlessLineIsCutAtMaxLineBytes) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {.max_batch_bytes = 1 << 20, .max_line_bytes = 8});

  // Byte by byte, the line moves as soon as it is max_line_bytes long.
  for (char c : std::string("abcdefghij")) pump.Write(OutputStream::kStdout, std::string(1, c));
  pump.Flush();
  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{0, v1::LOG_STDOUT, "abcdefgh"}));
  pump.Finish();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "abcdefghij");
}

TEST(LogPump, EndlessLineArrivingAtOnceIsCutIntoMaxLineBytesPieces) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {.max_batch_bytes = 1 << 20, .max_line_bytes = 8});

  // A whole line, then 20 bytes of a line that never ends, in one write: the held
  // remainder must stay below max_line_bytes.
  pump.Write(OutputStream::kStdout, "ok\n" + std::string(20, 'x'));
  pump.Flush();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "ok\n" + std::string(16, 'x'));
  for (const Chunk& chunk : sent.chunks()) {
    if (chunk.data != "ok\n") {
      EXPECT_EQ(chunk.data, std::string(8, 'x'));
    }
  }
  pump.Finish();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "ok\n" + std::string(20, 'x'));
}

TEST(LogPump, AckDropsAcknowledgedChunksAndResendSendsExactlyTheRest) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());
  for (const char* line : {"a\n", "b\n", "c\n", "d\n"}) {
    pump.Write(OutputStream::kStdout, line);
    pump.Flush();
  }
  ASSERT_EQ(sent.chunks().size(), 4u);

  pump.Ack(2);  // chunks 0 and 1 are stored
  sent.clear();
  pump.RewindToUnacked();
  pump.Flush();
  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{2, v1::LOG_STDOUT, "c\n"}, Chunk{3, v1::LOG_STDOUT, "d\n"}));
  ASSERT_FALSE(sent.batches().empty());
  EXPECT_EQ(sent.batches()[0].stage().stage(), "build");

  // Resending keeps the chunks until they are acknowledged.
  sent.clear();
  pump.RewindToUnacked();
  pump.Flush();
  EXPECT_EQ(sent.chunks().size(), 2u);

  // An old acknowledgement changes nothing; a full one leaves nothing to resend.
  pump.Ack(1);
  sent.clear();
  pump.RewindToUnacked();
  pump.Flush();
  EXPECT_EQ(sent.chunks().size(), 2u);
  pump.Ack(4);
  sent.clear();
  pump.RewindToUnacked();
  pump.Flush();
  EXPECT_THAT(sent.batches(), IsEmpty());
}

TEST(LogPump, ResendSplitsIntoBatchesOfMaxBatchBytesInOrder) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {.max_batch_bytes = 4, .max_line_bytes = 1024});
  for (const char* line : {"aa\n", "bb\n", "cc\n", "dd\n", "ee\n"}) {
    pump.Write(OutputStream::kStdout, line);  // 3 bytes each: below the batch size
    pump.Flush();
  }
  pump.Ack(1);
  sent.clear();
  pump.RewindToUnacked();
  pump.Flush();
  std::vector<Chunk> chunks = sent.chunks();
  ASSERT_EQ(chunks.size(), 4u);
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].seq, static_cast<int64_t>(i + 1));
  EXPECT_EQ(sent.batches().size(), 2u);
}

TEST(LogPump, AllAckedOnlyOnceEverythingWrittenIsAcknowledged) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());
  EXPECT_TRUE(pump.AllAcked());

  pump.Write(OutputStream::kStdout, "line\n");
  EXPECT_FALSE(pump.AllAcked()) << "buffered, not sent";
  pump.Flush();
  EXPECT_FALSE(pump.AllAcked()) << "sent, not acknowledged";
  pump.WriteSystemLine("done");
  pump.Finish();
  pump.Ack(1);
  EXPECT_FALSE(pump.AllAcked()) << "the system line is not acknowledged";
  pump.Ack(2);
  EXPECT_TRUE(pump.AllAcked());
}

TEST(LogPump, WriteSystemLineProducesADockyardLineOnTheSystemStream) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender());
  pump.Write(OutputStream::kStdout, "half");
  pump.WriteSystemLine("cache pip: volume dockyard-pip at /root/.cache/pip");
  pump.Flush();
  // The system line does not break into the held partial stdout line.
  EXPECT_THAT(sent.chunks(),
              ElementsAre(Chunk{0, v1::LOG_SYSTEM, "[dockyard] cache pip: volume dockyard-pip at /root/.cache/pip\n"}));
  pump.Finish();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "half");
}

constexpr char kSecret[] = "s3cr3t-value-42";

TEST(LogPump, ASecretSplitAcrossWritesAndChunksNeverLeavesThePump) {
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {.max_batch_bytes = 8, .max_line_bytes = 8});
  pump.SetSecrets({kSecret});
  const std::string text = std::string("key=") + kSecret + "\nagain " + kSecret;
  for (size_t at = 0; at < text.size(); at += 5) {
    pump.Write(OutputStream::kStdout, text.substr(at, 5));
    pump.Flush();
  }
  pump.WriteSystemLine(std::string("failed: ") + kSecret);
  pump.Finish();
  EXPECT_EQ(sent.text(v1::LOG_STDOUT), "key=***\nagain ***");
  EXPECT_EQ(sent.text(v1::LOG_SYSTEM), "[dockyard] failed: ***\n");
  for (const Chunk& chunk : sent.chunks()) {
    EXPECT_EQ(chunk.data.find("s3cr3t"), std::string::npos) << chunk.data;
    if (chunk.stream == v1::LOG_STDOUT) {
      EXPECT_LE(chunk.data.size(), 8u + 2u) << "a cut never falls inside ***";
    }
  }
  EXPECT_EQ(pump.Mask(std::string("exit: ") + kSecret), "exit: ***");
}

TEST(LogPump, AfterARestartCoveredCountsTheContainersBytesNotTheMaskedOnes) {
  const std::string spool = testing::FreshDir() + "/log.spool";
  const std::string out = std::string("token ") + kSecret + "\n";
  const std::string err = std::string(kSecret) + kSecret + "!\n";
  {
    Recorder sent;
    LogPump pump(TestRef(), sent.sender(), {}, spool);
    pump.SetSecrets({kSecret});
    pump.Write(OutputStream::kStdout, out);
    pump.Write(OutputStream::kStderr, err);
    pump.Write(OutputStream::kStdout, "tail s3cr3t");  // held: may still become the secret
    pump.Flush();
  }
  Recorder sent;
  LogPump reloaded(TestRef(), sent.sender(), {}, spool);
  EXPECT_EQ(reloaded.Covered(OutputStream::kStdout), static_cast<int64_t>(out.size()));
  EXPECT_EQ(reloaded.Covered(OutputStream::kStderr), static_cast<int64_t>(err.size()));
  std::string file;
  {
    std::ifstream in(spool, std::ios::binary);
    file.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  EXPECT_EQ(file.find("s3cr3t"), std::string::npos) << "the spool holds masked text only";
}

TEST(LogPump, AStalledControllerLeavesChunksOnTheSpoolAndGetsThemInOrderLater) {
  const std::string spool = testing::FreshDir() + "/log.spool";
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {.max_batch_bytes = 1000, .max_inflight_bytes = 2000}, spool);
  std::string all;
  for (int i = 0; i < 1000; ++i) {
    const std::string line = std::string(90, 'a' + i % 26) + std::to_string(100000 + i) + "\n";
    all += line;
    pump.Write(OutputStream::kStdout, line);
    pump.Flush();
  }
  pump.Finish();
  // Nothing acknowledged: what went out stays within the window; the rest is on disk.
  int64_t out_bytes = 0;
  for (const Chunk& chunk : sent.chunks()) out_bytes += static_cast<int64_t>(chunk.data.size());
  EXPECT_LT(out_bytes, 2000 + 1000);
  EXPECT_FALSE(pump.AllSent());
  // The controller comes back: acknowledgements and flushes move the rest, in order.
  std::vector<Chunk> delivered = sent.chunks();
  for (int round = 0; round < 10000 && !pump.AllAcked(); ++round) {
    pump.Ack(delivered.empty() ? 0 : delivered.back().seq + 1);
    sent.clear();
    pump.Flush();
    for (const Chunk& chunk : sent.chunks()) delivered.push_back(chunk);
  }
  EXPECT_TRUE(pump.AllSent());
  std::string text;
  for (size_t i = 0; i < delivered.size(); ++i) {
    EXPECT_EQ(delivered[i].seq, static_cast<int64_t>(i));
    text += delivered[i].data;
  }
  EXPECT_EQ(text, all);
}

TEST(LogPump, RewindResendsTheUnacknowledgedChunksFromTheSpool) {
  const std::string spool = testing::FreshDir() + "/log.spool";
  Recorder sent;
  LogPump pump(TestRef(), sent.sender(), {}, spool);
  for (const char* line : {"a\n", "b\n", "c\n"}) {
    pump.Write(OutputStream::kStdout, line);
    pump.Flush();
  }
  pump.Ack(1);
  sent.clear();
  pump.RewindToUnacked();
  EXPECT_FALSE(pump.AllSent());
  pump.Flush();
  EXPECT_THAT(sent.chunks(), ElementsAre(Chunk{1, v1::LOG_STDOUT, "b\n"}, Chunk{2, v1::LOG_STDOUT, "c\n"}));
  EXPECT_TRUE(pump.AllSent());
}

TEST(LogPump, PastTheLogLimitKeepsHeadAndTailAndSaysWhatWasCut) {
  Recorder recorder;
  v1::StageRef ref;
  ref.set_run_id("1");
  LogPump pump(ref, recorder.sender(), LogPumpOptions{.max_log_bytes = 100, .tail_bytes = 30});
  std::string all;
  for (int i = 0; i < 100; ++i) all += std::to_string(1000 + i) + "\n";  // 500 bytes
  for (size_t at = 0; at < all.size(); at += 7) pump.Write(OutputStream::kStdout, all.substr(at, 7));
  pump.Finish();
  const std::string out = recorder.text(v1::LOG_STDOUT);
  EXPECT_EQ(out, all.substr(0, 70) + all.substr(all.size() - 30));  // head 70, tail 30
  EXPECT_EQ(recorder.text(v1::LOG_SYSTEM),
            "[dockyard] log cut: 400 bytes left out here (the agent's --max_log_bytes is 100; the first part and "
            "the last 30 bytes are kept)\n");
  // The cut line sits between head and tail.
  const std::vector<Chunk> chunks = recorder.chunks();
  size_t cut = 0;
  while (cut < chunks.size() && chunks[cut].stream != v1::LOG_SYSTEM) ++cut;
  ASSERT_LT(cut, chunks.size());
  std::string before;
  for (size_t i = 0; i < cut; ++i) before += chunks[i].data;
  EXPECT_EQ(before, all.substr(0, 70));
}

}  // namespace
}  // namespace dockyard
