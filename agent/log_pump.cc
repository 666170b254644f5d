#include "agent/log_pump.h"

namespace dockyard {

LogPump::LogPump(v1::StageRef ref, Sender send, LogPumpOptions options)
    : ref_(std::move(ref)), send_(std::move(send)), options_(options) {
  *pending_.mutable_stage() = ref_;
}

void LogPump::Write(OutputStream stream, std::string_view data) {
  absl::MutexLock lock(&mu_);
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
  // An endless line still moves: cut it once it is long enough.
  if (end == 0 && partial.size() >= options_.max_line_bytes) end = partial.size();
  if (end == 0) return;
  v1::LogChunk* chunk = pending_.add_chunks();
  chunk->set_seq(next_seq_++);
  chunk->set_stream(stream == OutputStream::kStderr ? v1::LOG_STDERR : v1::LOG_STDOUT);
  chunk->set_data(partial.substr(0, end));
  pending_bytes_ += end;
  partial.erase(0, end);
}

void LogPump::SendPending() {
  if (pending_.chunks_size() == 0) return;
  for (const v1::LogChunk& chunk : pending_.chunks()) unacked_.push_back(chunk);
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
