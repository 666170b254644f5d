#include "agent/log_pump.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"

namespace dockyard {
namespace {

// Spool records: 4-byte little-endian length, then the serialized LogChunk.
constexpr size_t kRecordHeader = 4;

uint32_t RecordLength(const char* header) {
  const auto* p = reinterpret_cast<const unsigned char*>(header);
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

bool ReadAt(int fd, int64_t offset, size_t size, std::string& out) {
  out.resize(size);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Container bytes a spooled chunk stands for (masking may have changed its length).
int64_t RawBytes(const v1::LogChunk& chunk) {
  return chunk.has_raw_bytes() ? chunk.raw_bytes() : static_cast<int64_t>(chunk.data().size());
}

}  // namespace

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

void LogPump::LoadSpool() {
  spool_fd_ = ::open(spool_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (spool_fd_ < 0) return;  // chunks stay in memory; only a restart could lose them
  struct stat st {};
  const int64_t file_size = ::fstat(spool_fd_, &st) == 0 ? st.st_size : 0;
  int64_t pos = 0;
  std::string header, body;
  // Read record by record: an earlier life may have left a long log.
  while (pos + static_cast<int64_t>(kRecordHeader) <= file_size && ReadAt(spool_fd_, pos, kRecordHeader, header)) {
    const uint32_t len = RecordLength(header.data());
    v1::LogChunk chunk;
    if (pos + static_cast<int64_t>(kRecordHeader + len) > file_size ||
        !ReadAt(spool_fd_, pos + static_cast<int64_t>(kRecordHeader), len, body) || !chunk.ParseFromString(body)) {
      break;
    }
    if (chunk.stream() == v1::LOG_STDOUT) covered_out_ += RawBytes(chunk);
    if (chunk.stream() == v1::LOG_STDERR) covered_err_ += RawBytes(chunk);
    next_seq_ = chunk.seq() + 1;
    unacked_.push_back(Stored{chunk.seq(), pos, static_cast<int64_t>(kRecordHeader + len),
                              static_cast<int64_t>(chunk.data().size())});
    pos += static_cast<int64_t>(kRecordHeader + len);
  }
  logged_ = covered_out_ + covered_err_;
  // Cut a record torn by a crash, so new records follow the last whole one.
  if (::ftruncate(spool_fd_, static_cast<off_t>(pos)) != 0) {
    ::close(spool_fd_);
    spool_fd_ = -1;
    unacked_.clear();  // unreadable as a whole: the controller's copy is what there is
    return;
  }
  spool_end_ = pos;
}

int64_t LogPump::Spool(const v1::LogChunk& chunk, int64_t* size) {
  if (spool_fd_ < 0) return -1;
  const std::string body = chunk.SerializeAsString();
  const uint32_t len = static_cast<uint32_t>(body.size());
  std::string record = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                        static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
  record += body;
  size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::pwrite(spool_fd_, record.data() + done, record.size() - done,
                               static_cast<off_t>(spool_end_ + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;  // kept in memory instead
    done += static_cast<size_t>(n);
  }
  const int64_t offset = spool_end_;
  spool_end_ += static_cast<int64_t>(record.size());
  *size = static_cast<int64_t>(record.size());
  return offset;
}

int64_t LogPump::Covered(OutputStream stream) {
  absl::MutexLock lock(&mu_);
  return stream == OutputStream::kStderr ? covered_err_ : covered_out_;
}

void LogPump::SetSecrets(const std::vector<std::string>& values) {
  absl::MutexLock lock(&mu_);
  out_.masker = SecretMasker(values);
  err_.masker = SecretMasker(values);
  system_masker_ = SecretMasker(values);
}

std::string LogPump::Mask(std::string_view text) {
  absl::MutexLock lock(&mu_);
  return system_masker_.MaskAll(text);
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
  Append(stream, data);
  TakeLines(stream, /*all=*/false);
  if (pending_bytes_ >= options_.max_batch_bytes) {
    StorePending();
    SendStored();
  }
}

void LogPump::Append(OutputStream stream, std::string_view data) {
  StreamState& s = State(stream);
  if (s.masker.empty()) {
    s.partial.append(data.data(), data.size());
    return;
  }
  SecretMasker::Output masked = s.masker.Feed(data);
  for (const auto& [offset, replaced] : masked.masks) s.masks.emplace_back(s.partial.size() + offset, replaced);
  s.partial.append(masked.text);
}

void LogPump::FlushMasker(OutputStream stream) {
  StreamState& s = State(stream);
  if (s.masker.empty()) return;
  SecretMasker::Output held = s.masker.Flush();
  for (const auto& [offset, replaced] : held.masks) s.masks.emplace_back(s.partial.size() + offset, replaced);
  s.partial.append(held.text);
}

void LogPump::WriteSystemLine(std::string_view line) {
  absl::MutexLock lock(&mu_);
  v1::LogChunk* chunk = pending_.add_chunks();
  chunk->set_seq(next_seq_++);
  chunk->set_stream(v1::LOG_SYSTEM);
  std::string data = absl::StrCat("[dockyard] ", system_masker_.MaskAll(line), "\n");
  pending_bytes_ += data.size();
  chunk->set_data(std::move(data));
}

void LogPump::TakeLines(OutputStream stream, bool all) {
  StreamState& s = State(stream);
  std::string& partial = s.partial;
  const v1::LogStream wire = stream == OutputStream::kStderr ? v1::LOG_STDERR : v1::LOG_STDOUT;
  // `whole_lines` may join the last pending chunk when that holds whole lines of the
  // same stream: engines hand output over a line at a time, and a chunk per line
  // would cost a record, a message and an index entry per line.
  auto take = [&](size_t n, bool whole_lines) {
    v1::LogChunk* chunk = nullptr;
    if (whole_lines && pending_.chunks_size() > 0) {
      v1::LogChunk* last = pending_.mutable_chunks(pending_.chunks_size() - 1);
      if (last->stream() == wire && !last->data().empty() && last->data().back() == '\n' &&
          last->data().size() + n <= options_.max_batch_bytes) {
        chunk = last;
      }
    }
    if (chunk == nullptr) {
      chunk = pending_.add_chunks();
      chunk->set_seq(next_seq_++);
      chunk->set_stream(wire);
    }
    chunk->mutable_data()->append(partial, 0, n);
    if (!s.masker.empty()) {
      // What the chunk stands for in the container's output: a restart skips that much.
      int64_t raw = static_cast<int64_t>(n);
      while (!s.masks.empty() && s.masks.front().first < n) {
        raw += static_cast<int64_t>(s.masks.front().second) - static_cast<int64_t>(kMask.size());
        s.masks.pop_front();
      }
      for (auto& mask : s.masks) mask.first -= n;
      chunk->set_raw_bytes(chunk->raw_bytes() + raw);
    }
    pending_bytes_ += n;
    partial.erase(0, n);
  };
  size_t end = partial.rfind('\n');
  end = end == std::string::npos ? 0 : end + 1;
  if (all) end = partial.size();
  if (end > 0) take(end, !all || partial.back() == '\n');
  // An endless line still moves: cut it into max_line_bytes pieces, so what stays
  // held is always shorter than that, however much one write brought.
  while (options_.max_line_bytes > 0 && partial.size() >= options_.max_line_bytes) {
    size_t n = options_.max_line_bytes;
    for (const auto& [offset, replaced] : s.masks) {
      if (offset < n && n < offset + kMask.size()) n = offset + kMask.size();  // never inside a "***"
    }
    take(n, /*whole_lines=*/false);
  }
}

void LogPump::StorePending() {
  for (v1::LogChunk& chunk : *pending_.mutable_chunks()) {
    Stored stored;
    stored.seq = chunk.seq();
    stored.bytes = static_cast<int64_t>(chunk.data().size());
    stored.offset = Spool(chunk, &stored.size);  // before it leaves: what was sent is on disk
    if (stored.offset < 0) stored.in_memory = std::move(chunk);
    unacked_.push_back(std::move(stored));
  }
  pending_.clear_chunks();
  pending_bytes_ = 0;
}

v1::LogChunk LogPump::ReadStored(size_t index) {
  const Stored& stored = unacked_[index];
  if (stored.in_memory) return *stored.in_memory;
  std::string record;
  v1::LogChunk chunk;
  if (ReadAt(spool_fd_, stored.offset, static_cast<size_t>(stored.size), record) &&
      chunk.ParseFromArray(record.data() + kRecordHeader, static_cast<int>(record.size() - kRecordHeader))) {
    return chunk;
  }
  // Said in the log rather than sent as something it is not.
  chunk.Clear();
  chunk.set_seq(stored.seq);
  chunk.set_stream(v1::LOG_SYSTEM);
  chunk.set_data("[dockyard] a piece of this log was lost: the agent could not read it back from its spool\n");
  return chunk;
}

void LogPump::SendStored() {
  v1::LogBatch batch;
  size_t batch_bytes = 0;
  auto send = [&] {
    if (batch.chunks_size() == 0) return;
    *batch.mutable_stage() = ref_;
    send_(std::move(batch));
    batch = v1::LogBatch();
    batch_bytes = 0;
  };
  while (unsent_ < unacked_.size() && inflight_bytes_ < options_.max_inflight_bytes) {
    *batch.add_chunks() = ReadStored(unsent_);
    batch_bytes += static_cast<size_t>(unacked_[unsent_].bytes);
    inflight_bytes_ += unacked_[unsent_].bytes;
    ++unsent_;
    if (batch_bytes >= options_.max_batch_bytes) send();
  }
  send();
}

void LogPump::Flush() {
  absl::MutexLock lock(&mu_);
  StorePending();
  SendStored();
}

void LogPump::Finish() {
  absl::MutexLock lock(&mu_);
  auto drain = [&] {
    for (OutputStream stream : {OutputStream::kStdout, OutputStream::kStderr}) {
      FlushMasker(stream);
      TakeLines(stream, /*all=*/true);
    }
  };
  drain();
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
      Append(stream, data);
      TakeLines(stream, /*all=*/false);
    }
    tail_.clear();
    tail_size_ = 0;
    drain();
  }
  StorePending();
  SendStored();
}

void LogPump::Ack(int64_t next_seq) {
  absl::MutexLock lock(&mu_);
  while (!unacked_.empty() && unacked_.front().seq < next_seq) {
    if (unsent_ > 0) {
      inflight_bytes_ -= unacked_.front().bytes;
      --unsent_;
    }
    unacked_.pop_front();
  }
}

void LogPump::RewindToUnacked() {
  absl::MutexLock lock(&mu_);
  unsent_ = 0;
  inflight_bytes_ = 0;
}

bool LogPump::AllSent() {
  absl::MutexLock lock(&mu_);
  return pending_.chunks_size() == 0 && unsent_ == unacked_.size();
}

bool LogPump::AllAcked() {
  absl::MutexLock lock(&mu_);
  return unacked_.empty() && pending_.chunks_size() == 0;
}

}  // namespace dockyard
