#include "controller/log_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "controller/file_log_backend.h"

namespace dockyard {

LogStore::LogStore(std::unique_ptr<LogBackend> backend) : backend_(std::move(backend)) {}

LogStore::LogStore(std::string dir) : LogStore(std::make_unique<FileLogBackend>(std::move(dir))) {}

LogStore::Attempt& LogStore::Load(const v1::StageRef& ref) {
  Attempt& attempt = attempts_[Key{ref.run_id(), ref.stage(), ref.attempt()}];
  if (attempt.known) return attempt;
  auto recovered = backend_->Recover(ref);
  if (!recovered.ok()) {  // asked again on the next use; until then nothing is appended
    Logger("controller")->warn("run={} stage={} attempt={} log unreadable for now: {}", ref.run_id(), ref.stage(),
                               ref.attempt(), recovered.status().ToString());
    return attempt;
  }
  attempt.size = recovered->size;
  attempt.next_seq = recovered->next_seq;
  attempt.known = true;
  return attempt;
}

absl::Status LogStore::Unknown(const v1::StageRef& ref) {
  return absl::UnavailableError(absl::StrCat("the log of ", ref.stage(), " attempt ", ref.attempt(),
                                             " cannot be read from its store now; try again"));
}

absl::Status LogStore::Write(const v1::StageRef& ref, Attempt& attempt, int64_t seq, std::string_view data) {
  RETURN_IF_ERROR(backend_->Write(ref, seq, attempt.size, data));
  attempt.size += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LogStore::Append(const v1::StageRef& ref, int64_t seq, std::string_view data) {
  std::vector<std::function<void()>> wakes;
  absl::StatusOr<int64_t> next = [&]() -> absl::StatusOr<int64_t> {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    if (!attempt.known) return Unknown(ref);
    if (seq < attempt.next_seq) return attempt.next_seq;  // a resend of what we have
    if (attempt.closed) {
      return absl::FailedPreconditionError(absl::StrCat("log of ", ref.stage(), " attempt ",
                                                        ref.attempt(), " is closed"));
    }
    if (seq > attempt.next_seq) {
      return absl::FailedPreconditionError(
          absl::StrCat("log chunk ", seq, " arrived before chunk ", attempt.next_seq));
    }
    if (absl::Status st = Write(ref, attempt, seq, data); !st.ok()) return st;
    wakes = Ready(ref, attempt);
    return ++attempt.next_seq;
  }();
  WakeAll(std::move(wakes));
  return next;
}

int64_t LogStore::NextSeq(const v1::StageRef& ref) {
  absl::MutexLock lock(&mu_);
  return Load(ref).next_seq;
}

absl::Status LogStore::AppendSystemLine(const v1::StageRef& ref, std::string_view line) {
  std::vector<std::function<void()>> wakes;
  absl::Status written = [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    if (!attempt.known) return Unknown(ref);
    if (attempt.closed) return absl::OkStatus();
    // Indexed with seq -1: it has its place in the offsets but uses no sequence number.
    RETURN_IF_ERROR(Write(ref, attempt, -1, absl::StrCat("[dockyard] ", absl::string_view(line.data(), line.size()), "\n")));
    wakes = Ready(ref, attempt);
    return absl::OkStatus();
  }();
  WakeAll(std::move(wakes));
  return written;
}

void LogStore::Close(const v1::StageRef& ref) {
  std::vector<std::function<void()>> wakes;
  {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    if (!attempt.closed && attempt.known) backend_->Settled(ref, attempt.size);
    attempt.closed = true;
    wakes = Ready(ref, attempt);
  }
  WakeAll(std::move(wakes));
}

absl::Status LogStore::RemoveRun(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  std::erase_if(attempts_, [&](const auto& entry) { return std::get<0>(entry.first) == run_id; });
  return backend_->RemoveRun(run_id);
}

uint64_t LogStore::Watch(const v1::StageRef& ref, int64_t offset, std::function<void()> wake) {
  {
    absl::MutexLock lock(&mu_);
    const Attempt& attempt = Load(ref);
    if (attempt.size <= offset && !attempt.closed) {
      const uint64_t id = ++last_waiter_;
      const Key key{ref.run_id(), ref.stage(), ref.attempt()};
      waiters_[key].emplace(id, Waiter{offset, std::move(wake)});
      waiter_keys_.emplace(id, key);
      return id;
    }
  }
  wake();
  return 0;
}

bool LogStore::Unwatch(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto key = waiter_keys_.find(id);
  if (key == waiter_keys_.end()) return false;
  auto waiters = waiters_.find(key->second);
  waiters->second.erase(id);
  if (waiters->second.empty()) waiters_.erase(waiters);
  waiter_keys_.erase(key);
  return true;
}

std::vector<std::function<void()>> LogStore::Ready(const v1::StageRef& ref, const Attempt& attempt) {
  std::vector<std::function<void()>> wakes;
  auto waiters = waiters_.find(Key{ref.run_id(), ref.stage(), ref.attempt()});
  if (waiters == waiters_.end()) return wakes;
  for (auto it = waiters->second.begin(); it != waiters->second.end();) {
    if (attempt.size > it->second.offset || attempt.closed) {
      wakes.push_back(std::move(it->second.wake));
      waiter_keys_.erase(it->first);
      it = waiters->second.erase(it);
    } else {
      ++it;
    }
  }
  if (waiters->second.empty()) waiters_.erase(waiters);
  return wakes;
}

void LogStore::WakeAll(std::vector<std::function<void()>> wakes) {
  for (auto& wake : wakes) wake();
}

absl::StatusOr<LogStore::Slice> LogStore::Read(const v1::StageRef& ref, int64_t offset,
                                               int64_t max_bytes) {
  Slice slice;
  {
    absl::MutexLock lock(&mu_);
    Attempt& attempt = Load(ref);
    if (!attempt.known) return Unknown(ref);
    slice.size = attempt.size;
    slice.closed = attempt.closed;
  }
  if (offset < 0 || offset > slice.size) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is past the log's end (", slice.size, ")"));
  }
  ASSIGN_OR_RETURN(slice.data, backend_->Read(ref, offset, max_bytes, slice.size));
  const int64_t want = std::min(max_bytes, slice.size - offset);
  const int64_t n = static_cast<int64_t>(slice.data.size());
  // Only bytes that were complete when we sampled the size are returned, so a
  // concurrent append never shows a torn chunk; `closed` applies to that size.
  if (n < want) slice.closed = false;
  return slice;
}

}  // namespace dockyard
