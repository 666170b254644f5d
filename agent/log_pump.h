// Turns one stage attempt's raw output into ordered, numbered log chunks. Secrets
// are masked first; each stream is cut at line ends so stdout and stderr never
// interleave mid-line; lines are batched. Every chunk is spooled to disk before it
// is sent and kept there (not in memory) until the controller acknowledges it, so a
// reconnect resends exactly what it has not stored — no gap, no duplicate. At most
// `max_inflight_bytes` are sent and unacknowledged at a time: a controller that
// stalls leaves the rest on disk, never in the agent's memory.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/docker_client.h"
#include "agent/secret_masker.h"
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
  // Sent but not yet acknowledged, at most (a window, like TCP's).
  int64_t max_inflight_bytes = 4 << 20;
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

  // The stage's secret values: masked in everything written from now on. Call it
  // before the first Write.
  void SetSecrets(const std::vector<std::string>& values);
  // `text` with the secrets masked (status messages).
  std::string Mask(std::string_view text);

  // Output as it arrives (the executor's log thread).
  void Write(OutputStream stream, std::string_view data);
  // A line Dockyard itself writes into the log ("[dockyard] ..."), e.g. which volume
  // a cache is.
  void WriteSystemLine(std::string_view line);
  // Sends the whole lines buffered so far, and what the window holds back (the
  // agent's flush timer, every ~100 ms). Reads the spool: never from a reaction.
  void Flush();
  // End of output: sends everything, partial last lines included.
  void Finish();
  // The controller stored every chunk below `next_seq`. Memory only.
  void Ack(int64_t next_seq);
  // After a reconnect: the next Flush sends again every chunk not yet
  // acknowledged, in order. Memory only (safe in a reaction).
  void RewindToUnacked();
  // Every chunk made so far has been sent on the current session (so a final
  // status may follow it).
  bool AllSent();
  bool AllAcked();
  const v1::StageRef& ref() const { return ref_; }

 private:
  // A chunk made and stored, not yet acknowledged: on the spool, or in memory when
  // there is no spool or the disk refused it.
  struct Stored {
    int64_t seq = 0;
    int64_t offset = -1;  // of its record in the spool
    int64_t size = 0;     // of its record
    int64_t bytes = 0;    // of its data
    std::optional<v1::LogChunk> in_memory;
  };

  // Masks `data` (when there are secrets) and appends it to the stream's partial line.
  void Append(OutputStream stream, std::string_view data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushMasker(OutputStream stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeLines(OutputStream stream, bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StorePending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends stored chunks from the first unsent one while the window allows.
  void SendStored() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::LogChunk ReadStored(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadSpool() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends the chunk's record; returns its offset, or -1 when there is no spool.
  int64_t Spool(const v1::LogChunk& chunk, int64_t* size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Per output stream: the partial line (masked), the masks in it, the masker.
  struct StreamState {
    std::string partial;
    std::deque<std::pair<size_t, size_t>> masks;  // offset in partial, input bytes replaced
    SecretMasker masker;
  };
  StreamState& State(OutputStream stream) { return stream == OutputStream::kStderr ? err_ : out_; }

  const v1::StageRef ref_;
  const Sender send_;
  const LogPumpOptions options_;

  absl::Mutex mu_;
  StreamState out_ ABSL_GUARDED_BY(mu_);
  StreamState err_ ABSL_GUARDED_BY(mu_);
  SecretMasker system_masker_ ABSL_GUARDED_BY(mu_);
  v1::LogBatch pending_ ABSL_GUARDED_BY(mu_);  // chunks not stored yet
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Stored> unacked_ ABSL_GUARDED_BY(mu_);
  size_t unsent_ ABSL_GUARDED_BY(mu_) = 0;                    // index in unacked_ of the first chunk not sent
  int64_t inflight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  const std::string spool_path_;
  int spool_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t spool_end_ ABSL_GUARDED_BY(mu_) = 0;
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
