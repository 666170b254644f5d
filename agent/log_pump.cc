#include "agent/log_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace dockyard {

LogPump::LogPump(v1::StageRef ref, Sender send, LogPumpOptions options, std::string spool_path)
    : ref_(std::move(ref)), send_(std::move(send)), options_(options), spool_path_(std::move(spool_path)) {
  *pending_.mutable_stage() = ref_;
  absl::MutexLock lock(&mu_);
  if (!spool_path_.empty()) LoadSpool();
}

LogPump::~LogPump() {
  absl::MutexLock lock(&mu_);
  if (spool_fd_ >= 0) ::close(spool_fd_);
}

// Spool records: 4-byte little-endian length, then the serialized LogChunk.
void LogPump::LoadSpool() {
  std::string data;
  {
    std::ifstream in(spool_path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    data = ss.str();
  }
  size_t pos = 0;
  while (pos + 4 <= data.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + pos);
    const uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    v1::LogChunk chunk;
    if (pos + 4 + len > data.size() || !chunk.ParseFromArray(data.data() + pos + 4, static_cast<int>(len))) break;
    pos += 4 + len;
    if (chunk.stream() == v1::LOG_STDOUT) covered_out_ += static_cast<int64_t>(chunk.data().size());
    if (chunk.stream() == v1::LOG_STDERR) covered_err_ += static_cast<int64_t>(chunk.data().size());
    next_seq_ = chunk.seq() + 1;
    unacked_.push_back(std::move(chunk));
  }
  logged_ = covered_out_ + covered_err_;
  spool_fd_ = ::open(spool_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (spool_fd_ >= 0) {
    // Cut a record torn by a crash, so new records follow the last whole one.
    if (::ftruncate(spool_fd_, static_cast<off_t>(pos)) != 0 || ::lseek(spool_fd_, 0, SEEK_END) < 0) {
      ::close(spool_fd_);
      spool_fd_ = -1;
    }
  }
}

void LogPump::Spool(const v1::LogChunk& chunk) {
  if (spool_fd_ < 0) return;
  const std::string body = chunk.SerializeAsString();
  const uint32_t len = static_cast<uint32_t>(body.size());
  std::string record = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                        static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
  record += body;
  size_t done = 0;
  while (done < record.size()) {
    ssize_t n = ::write(spool_fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;  // the chunk still goes out; only a restart could lose it
    done += static_cast<size_t>(n);
  }
}

int64_t LogPump::Covered(OutputStream stream) {
  absl::MutexLock lock(&mu_);
  return stream == OutputStream::kStderr ? covered_err_ : covered_out_;
}

void LogPump::Write(OutputStream stream, std::string_view data) {
  absl::MutexLock lock(&mu_);
  if (options_.max_log_bytes > 0) {
    const int64_t tail = std::min(options_.tail_bytes, options_.max_log_bytes / 2);
    const int64_t head = options_.max_log_bytes - tail;
    const int64_t live = std::clamp<int64_t>(head - logged_, 0, static_cast<int64_t>(data.size()));
    logged_ += live;
    if (live > 0) head_ends_line_ = data[static_cast<size_t>(live) - 1] == '\n';
    if (live < static_cast<int64_t>(data.size())) {
      // Past the head: only the last `tail` bytes are kept; the rest is cut.
      tail_.emplace_back(stream, std::string(data.substr(static_cast<size_t>(live))));
      tail_size_ += static_cast<int64_t>(data.size()) - live;
      while (tail_size_ > tail) {
        std::string& oldest = tail_.front().second;
        const int64_t drop = std::min<int64_t>(tail_size_ - tail, static_cast<int64_t>(oldest.size()));
        oldest.erase(0, static_cast<size_t>(drop));
        tail_size_ -= drop;
        cut_ += drop;
        if (oldest.empty()) tail_.pop_front();
      }
      data = data.substr(0, static_cast<size_t>(live));
    }
  }
  std::string& partial = stream == OutputStream::kStderr ? partial_err_ : partial_out_;
  partial.append(data.data(), data.size());
  TakeLines(stream, partial, /*all=*/false);
  if (pending_bytes_ >= options_.max_batch_bytes) SendPending();
}

void LogPump::WriteSystemLine(std::string_view line) {
  absl::MutexLock lock(&mu_);
  v1::LogChunk* chunk = pending_.add_chunks();
  chunk->set_seq(next_seq_++);
  chunk->set_stream(v1::LOG_SYSTEM);
  std::string data = "[dockyard] ";
  data.append(line.data(), line.size());
  data.push_back('\n');
  pending_bytes_ += data.size();
  chunk->set_data(std::move(data));
}

void LogPump::TakeLines(OutputStream stream, std::string& partial, bool all) {
  size_t end = partial.rfind('\n');
  end = end == std::string::npos ? 0 : end + 1;
  if (all) end = partial.size();
  auto take = [&](size_t n) {
    v1::LogChunk* chunk = pending_.add_chunks();
    chunk->set_seq(next_seq_++);
    chunk->set_stream(stream == OutputStream::kStderr ? v1::LOG_STDERR : v1::LOG_STDOUT);
    chunk->set_data(partial.substr(0, n));
    pending_bytes_ += n;
    partial.erase(0, n);
  };
  if (end > 0) take(end);
  // An endless line still moves: cut it into max_line_bytes pieces, so what stays
  // held is always shorter than that, however much one write brought.
  while (options_.max_line_bytes > 0 && partial.size() >= options_.max_line_bytes) {
    take(options_.max_line_bytes);
  }
}

void LogPump::SendPending() {
  if (pending_.chunks_size() == 0) return;
  for (const v1::LogChunk& chunk : pending_.chunks()) {
    Spool(chunk);  // before it leaves: what was sent is always on disk
    unacked_.push_back(chunk);
  }
  v1::LogBatch batch;
  batch.Swap(&pending_);
  *pending_.mutable_stage() = ref_;
  pending_bytes_ = 0;
  send_(std::move(batch));
}

void LogPump::Flush() {
  absl::MutexLock lock(&mu_);
  SendPending();
}

void LogPump::Finish() {
  absl::MutexLock lock(&mu_);
  TakeLines(OutputStream::kStdout, partial_out_, /*all=*/true);
  TakeLines(OutputStream::kStderr, partial_err_, /*all=*/true);
  if (!tail_.empty()) {
    if (cut_ > 0) {
      v1::LogChunk* chunk = pending_.add_chunks();
      chunk->set_seq(next_seq_++);
      chunk->set_stream(v1::LOG_SYSTEM);
      // On a line of its own, even when the head stopped in the middle of one.
      chunk->set_data(absl::StrCat(head_ends_line_ ? "" : "\n", "[dockyard] log cut: ", cut_, " bytes left out here (the agent's --max_log_bytes is ",
                                   options_.max_log_bytes, "; the first part and the last ", tail_size_,
                                   " bytes are kept)\n"));
      pending_bytes_ += chunk->data().size();
    }
    for (auto& [stream, data] : tail_) {
      std::string& partial = stream == OutputStream::kStderr ? partial_err_ : partial_out_;
      partial.append(data);
      TakeLines(stream, partial, /*all=*/false);
    }
    tail_.clear();
    tail_size_ = 0;
    TakeLines(OutputStream::kStdout, partial_out_, /*all=*/true);
    TakeLines(OutputStream::kStderr, partial_err_, /*all=*/true);
  }
  SendPending();
}

void LogPump::Ack(int64_t next_seq) {
  absl::MutexLock lock(&mu_);
  while (!unacked_.empty() && unacked_.front().seq() < next_seq) unacked_.pop_front();
}

void LogPump::ResendUnacked() {
  absl::MutexLock lock(&mu_);
  if (unacked_.empty()) return;
  v1::LogBatch batch;
  *batch.mutable_stage() = ref_;
  size_t bytes = 0;
  for (const v1::LogChunk& chunk : unacked_) {
    *batch.add_chunks() = chunk;
    bytes += chunk.data().size();
    if (bytes >= options_.max_batch_bytes) {
      send_(batch);
      batch.clear_chunks();
      bytes = 0;
    }
  }
  if (batch.chunks_size() > 0) send_(std::move(batch));
}

bool LogPump::AllAcked() {
  absl::MutexLock lock(&mu_);
  return unacked_.empty() && pending_.chunks_size() == 0;
}

}  // namespace dockyard
