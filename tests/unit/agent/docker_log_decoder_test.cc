#include "agent/docker_log_decoder.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace dockyard {
namespace {

std::string Frame(uint8_t stream, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(stream));
  f.append(3, '\0');
  const auto n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>((n >> 24) & 0xff));
  f.push_back(static_cast<char>((n >> 16) & 0xff));
  f.push_back(static_cast<char>((n >> 8) & 0xff));
  f.push_back(static_cast<char>(n & 0xff));
  f.append(payload);
  return f;
}

// Collects what the decoder emits, per stream, plus the order of sink calls.
struct Collected {
  std::string out;
  std::string err;
  std::vector<std::pair<OutputStream, std::string>> calls;

  DockerClient::OutputSink Sink() {
    return [this](OutputStream s, std::string_view bytes) {
      (s == OutputStream::kStdout ? out : err).append(bytes);
      calls.emplace_back(s, std::string(bytes));
    };
  }
};

TEST(DockerLogDecoder, DecodesWholeFramesInOneFeed) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, "hello\n") + Frame(2, "oops\n") + Frame(1, "bye\n")).ok());
  EXPECT_TRUE(decoder.Finish().ok());
  EXPECT_EQ(got.out, "hello\nbye\n");
  EXPECT_EQ(got.err, "oops\n");
}

TEST(DockerLogDecoder, KeepsStdoutAndStderrApartInArrivalOrder) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(2, "e1") + Frame(1, "o1") + Frame(2, "e2")).ok());
  ASSERT_EQ(got.calls.size(), 3u);
  EXPECT_EQ(got.calls[0], std::make_pair(OutputStream::kStderr, std::string("e1")));
  EXPECT_EQ(got.calls[1], std::make_pair(OutputStream::kStdout, std::string("o1")));
  EXPECT_EQ(got.calls[2], std::make_pair(OutputStream::kStderr, std::string("e2")));
}

TEST(DockerLogDecoder, ReassemblesFramesSplitAtEveryByte) {
  const std::string wire = Frame(1, "line one\n") + Frame(2, "err one\n") + Frame(1, "") +
                           Frame(1, std::string(300, 'x')) + Frame(2, "\n");
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  for (char c : wire) ASSERT_TRUE(decoder.Feed(std::string_view(&c, 1)).ok());
  EXPECT_TRUE(decoder.Finish().ok());
  EXPECT_EQ(got.out, "line one\n" + std::string(300, 'x'));
  EXPECT_EQ(got.err, "err one\n\n");
}

TEST(DockerLogDecoder, ReassemblesFramesSplitAtEveryPossiblePoint) {
  const std::string wire = Frame(1, "abc") + Frame(2, "defg") + Frame(1, "h");
  for (size_t i = 0; i <= wire.size(); ++i) {
    for (size_t j = i; j <= wire.size(); ++j) {
      Collected got;
      DockerLogDecoder decoder(got.Sink());
      std::string_view w(wire);
      ASSERT_TRUE(decoder.Feed(w.substr(0, i)).ok());
      ASSERT_TRUE(decoder.Feed(w.substr(i, j - i)).ok());
      ASSERT_TRUE(decoder.Feed(w.substr(j)).ok());
      EXPECT_TRUE(decoder.Finish().ok());
      EXPECT_EQ(got.out, "abch") << "split at " << i << "," << j;
      EXPECT_EQ(got.err, "defg") << "split at " << i << "," << j;
    }
  }
}

TEST(DockerLogDecoder, AcceptsZeroLengthFramesWithoutCallingTheSink) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, "") + Frame(2, "")).ok());
  EXPECT_TRUE(decoder.Finish().ok());
  EXPECT_TRUE(got.calls.empty());
}

TEST(DockerLogDecoder, TreatsStdinFramesAsStdout) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(0, "in")).ok());
  EXPECT_EQ(got.out, "in");
}

TEST(DockerLogDecoder, CarriesBinaryPayloadsUnchanged) {
  const std::string payload("\0\1\2\xff\n\0", 6);
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, payload)).ok());
  EXPECT_EQ(got.out, payload);
}

TEST(DockerLogDecoder, RejectsUnknownStreamType) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  absl::Status st = decoder.Feed(Frame(3, "x"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(got.calls.empty());
}

TEST(DockerLogDecoder, RejectsRawTtyOutput) {
  // A TTY container's logs are not framed; the first bytes are text, e.g. "hello".
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  EXPECT_EQ(decoder.Feed("hello world\n").code(), absl::StatusCode::kInternal);
}

TEST(DockerLogDecoder, RejectsNonZeroPadding) {
  std::string frame = Frame(1, "x");
  frame[2] = 1;
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  EXPECT_EQ(decoder.Feed(frame).code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(got.calls.empty());
}

TEST(DockerLogDecoder, ReportsAFrameCutOffInItsPayload) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  const std::string frame = Frame(1, "complete-line\n");
  ASSERT_TRUE(decoder.Feed(std::string_view(frame).substr(0, frame.size() - 3)).ok());
  EXPECT_EQ(got.out, "complete-li");  // what arrived is still delivered
  EXPECT_EQ(decoder.Finish().code(), absl::StatusCode::kDataLoss);
}

TEST(DockerLogDecoder, ReportsAFrameCutOffInItsHeader) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, "a") + Frame(2, "b").substr(0, 5)).ok());
  EXPECT_EQ(decoder.Finish().code(), absl::StatusCode::kDataLoss);
}

TEST(DockerLogDecoder, FinishesCleanlyOnAnEmptyStream) {
  Collected got;
  DockerLogDecoder decoder(got.Sink());
  EXPECT_TRUE(decoder.Finish().ok());
}

}  // namespace
}  // namespace dockyard
