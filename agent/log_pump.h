// Turns one stage attempt's raw output into ordered, numbered log chunks. Each
// stream is cut at line ends so stdout and stderr never interleave mid-line; lines
// are batched; chunks stay buffered until the controller acknowledges them, so a
// reconnect resends exactly what it has not stored — no gap, no duplicate.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/docker_client.h"
#include "dockyard/v1/agent.pb.h"

namespace dockyard {

struct LogPumpOptions {
  size_t max_batch_bytes = 64 * 1024;  // a batch is sent once it holds this much
  size_t max_line_bytes = 64 * 1024;   // a longer line is cut into pieces
  // The most container output one attempt logs (0 = no limit). Past it, the head
  // has gone out live; the last `tail_bytes` are kept (in memory, bounded) and sent
  // at the end after a line saying how much was cut in between.
  int64_t max_log_bytes = 0;
  int64_t tail_bytes = 1 << 20;
};

class LogPump {
 public:
  // `send` delivers a batch towards the controller; it must not block (it queues).
  using Sender = std::function<void(v1::LogBatch)>;

  // With a `spool_path`, every chunk is appended there before it is sent, and the
  // chunks already there (from an earlier life of this agent) are loaded as sent
  // but unacknowledged: numbering continues after them, and Covered() says how much
  // of the container's output they hold. A torn last record is cut off.
  LogPump(v1::StageRef ref, Sender send, LogPumpOptions options = {}, std::string spool_path = "");
  ~LogPump();
  LogPump(const LogPump&) = delete;
  LogPump& operator=(const LogPump&) = delete;

  // Bytes of `stream` the spooled chunks hold (skipped when output is replayed).
  int64_t Covered(OutputStream stream);

  // Output as it arrives (the executor's log thread).
  void Write(OutputStream stream, std::string_view data);
  // A line Dockyard itself writes into the log ("[dockyard] ..."), e.g. which volume
  // a cache is.
  void WriteSystemLine(std::string_view line);
  // Sends the whole lines buffered so far (the agent's flush timer, every ~100 ms).
  void Flush();
  // End of output: sends everything, partial last lines included.
  void Finish();
  // The controller stored every chunk below `next_seq`.
  void Ack(int64_t next_seq);
  // After a reconnect: sends every chunk not yet acknowledged, in order.
  void ResendUnacked();
  bool AllAcked();
  const v1::StageRef& ref() const { return ref_; }

 private:
  void TakeLines(OutputStream stream, std::string& partial, bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadSpool() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Spool(const v1::LogChunk& chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const v1::StageRef ref_;
  const Sender send_;
  const LogPumpOptions options_;

  absl::Mutex mu_;
  std::string partial_out_ ABSL_GUARDED_BY(mu_);
  std::string partial_err_ ABSL_GUARDED_BY(mu_);
  v1::LogBatch pending_ ABSL_GUARDED_BY(mu_);  // chunks not sent yet
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::LogChunk> unacked_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  const std::string spool_path_;
  int spool_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t covered_out_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t covered_err_ ABSL_GUARDED_BY(mu_) = 0;
  // Past max_log_bytes: output that went out live, the tail kept, what was cut.
  int64_t logged_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::pair<OutputStream, std::string>> tail_ ABSL_GUARDED_BY(mu_);
  int64_t tail_size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cut_ ABSL_GUARDED_BY(mu_) = 0;
  bool head_ends_line_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace dockyard
