#include "cli/run_follower.h"

#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cli/junit_report.h"
#include "cli/text.h"
#include "common/files.h"
#include "common/states.h"

namespace dockyard {
namespace {

// In a terminal, one line kept below the log saying what runs now: cleared before
// every write and drawn again after it. Off when stdout is not a terminal, so piped
// output never holds an escape sequence. Guarded by the follower's output mutex.
struct StatusLine {
  bool live = false;
  std::string text;

  void Clear(std::ostream& out) const {
    if (live && !text.empty()) out << "\r\x1b[K";
  }
  void Draw(std::ostream& out) const {
    if (live && !text.empty()) out << text;
  }
};

// Writes log data with a per-stage prefix, whole lines at a time, so stages that run
// at once interleave by line and never mid-line.
class PrefixedPrinter {
 public:
  static constexpr size_t kMaxHeldBytes = 64 * 1024;

  PrefixedPrinter(std::ostream& out, absl::Mutex& mu, std::string prefix, const StatusLine* status)
      : out_(out), mu_(mu), prefix_(std::move(prefix)), status_(status) {}
  ~PrefixedPrinter() { Flush(); }

  void Write(std::string_view data) {
    partial_.append(data.data(), data.size());
    size_t end = partial_.rfind('\n');
    if (end != std::string::npos) {
      Emit(std::string_view(partial_).substr(0, end + 1));
      partial_.erase(0, end + 1);
    }
    // A line without end is shown in pieces: memory stays bounded, whatever it holds.
    while (partial_.size() >= kMaxHeldBytes) {
      Emit(std::string(partial_.substr(0, kMaxHeldBytes)) + "\n");
      partial_.erase(0, kMaxHeldBytes);
    }
  }
  void Flush() {
    if (partial_.empty()) return;
    partial_.push_back('\n');
    Emit(partial_);
    partial_.clear();
  }

 private:
  void Emit(std::string_view lines) {
    std::string text;
    size_t start = 0;
    while (start < lines.size()) {
      size_t nl = lines.find('\n', start);
      absl::StrAppend(&text, prefix_, absl::string_view(lines.data() + start, nl - start + 1));
      start = nl + 1;
    }
    absl::MutexLock lock(&mu_);
    status_->Clear(out_);
    out_ << text;
    status_->Draw(out_);
    out_ << std::flush;
  }

  std::ostream& out_;
  absl::Mutex& mu_;
  const std::string prefix_;
  const StatusLine* status_;
  std::string partial_;
};

// "running: test 12s · build 3s", or "" when nothing runs.
std::string RunningLine(const v1::Run& run, int64_t now_ms) {
  std::string line;
  for (const v1::StageInfo& stage : run.stages()) {
    if (stage.state() != v1::STAGE_RUNNING && stage.state() != v1::STAGE_ASSIGNED) continue;
    const int64_t seconds = stage.started_unix_ms() > 0 ? (now_ms - stage.started_unix_ms()) / 1000 : 0;
    absl::StrAppend(&line, line.empty() ? "running: " : " · ", stage.name(), " ", seconds, "s on ", stage.agent());
  }
  return line;
}

// The table after a run: stage, agent, attempts, duration, result, artifacts.
void PrintSummary(std::ostream& out, const v1::Run& run, const std::vector<v1::Artifact>& artifacts) {
  size_t width = 5;
  for (const v1::StageInfo& stage : run.stages()) width = std::max(width, stage.name().size());
  out << absl::StrFormat("%-*s  %-20s  %8s  %9s  %-10s  %s\n", static_cast<int>(width), "STAGE", "AGENT", "ATTEMPTS",
                         "DURATION", "RESULT", "ARTIFACTS");
  for (const v1::StageInfo& stage : run.stages()) {
    int count = 0;
    for (const v1::Artifact& a : artifacts) count += a.stage() == stage.name() && !a.report() && a.service().empty();
    const bool timed = stage.started_unix_ms() > 0 && stage.finished_unix_ms() >= stage.started_unix_ms();
    out << absl::StrFormat("%-*s  %-20s  %8d  %9s  %-10s  %s\n", static_cast<int>(width), stage.name(),
                           stage.agent().empty() ? "-" : stage.agent(), stage.attempt(),
                           timed ? absl::StrFormat("%.1fs", (stage.finished_unix_ms() - stage.started_unix_ms()) / 1000.0)
                                 : "-",
                           Word(stage.state()), count == 0 ? "-" : absl::StrCat(count));
  }
}

// The last `lines` lines of `text`.
std::string Tail(const std::string& text, int lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

absl::Status WriteJunit(DockyardClient& client, const v1::Run& run, const std::string& path) {
  std::map<std::string, std::string> tails;
  for (const v1::StageInfo& stage : run.stages()) {
    if (stage.attempt() == 0 || stage.state() == v1::STAGE_SUCCEEDED) continue;
    std::string log;
    (void)client.ReadLog(run.id(), stage.name(), stage.attempt(), /*follow=*/false, [&](std::string_view data) {
      log.append(data.data(), data.size());
      // Keep memory bounded for huge logs: only the end matters.
      if (log.size() > (1 << 20)) log.erase(0, log.size() - (1 << 19));
    });
    tails[stage.name()] = Tail(log, 50);
  }
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return WriteFileAtomically(path, JunitXml(run, tails));
}

}  // namespace

int FollowRun(DockyardClient& client, const std::string& run_id, const RunCommandOptions& options,
              std::ostream& out, std::ostream& err) {
  auto first = client.GetRun(run_id);
  if (!first.ok()) return ReportError(first.status(), err);
  size_t width = 0;
  for (const v1::StageInfo& stage : first->stages()) width = std::max(width, stage.name().size());
  auto prefix = [&](const std::string& stage) {
    return absl::StrCat(stage, std::string(width - stage.size(), ' '), " | ");
  };

  absl::Mutex out_mu;
  std::map<std::string, v1::StageInfo> seen;
  std::set<std::pair<std::string, int>> following;
  std::map<std::pair<std::string, int>, std::string> endings_due;  // guarded by out_mu
  std::vector<std::thread> followers;
  v1::Run last;       // the newest snapshot; guarded by out_mu while the ticker runs
  StatusLine status;  // guarded by out_mu
  status.live = options.progress;
  auto say = [&](const std::string& stage, const std::string& text) {
    absl::MutexLock lock(&out_mu);
    status.Clear(out);
    out << prefix(stage) << "==> " << text << "\n";
    status.Draw(out);
    out << std::flush;
  };
  // Redraws the status line from `last` (with out_mu held).
  auto redraw = [&] {
    status.Clear(out);
    status.text = RunningLine(last, absl::ToUnixMillis(absl::Now()));
    status.Draw(out);
    out << std::flush;
  };
  // In a terminal, the status line's durations tick once a second.
  absl::Notification watch_over;
  std::thread ticker;
  if (status.live) {
    ticker = std::thread([&] {
      while (!watch_over.WaitForNotificationWithTimeout(absl::Seconds(1))) {
        absl::MutexLock lock(&out_mu);
        redraw();
      }
    });
  }

  absl::Status watched = client.WatchRun(run_id, [&](const v1::Run& run) {
    {
      absl::MutexLock lock(&out_mu);
      last = run;
      if (status.live) redraw();
    }
    // One snapshot can hold a stage ending and its dependent starting: tell the
    // endings first, so the story reads in the order it happened.
    std::vector<std::pair<std::string, int>> deferred;
    for (bool endings : {true, false}) {
      if (!endings && !deferred.empty()) {
        // Let the ended stages' logs drain and their endings print first.
        absl::MutexLock lock(&out_mu);
        auto printed = [&] {
          for (const auto& key : deferred) {
            if (endings_due.count(key) != 0) return false;
          }
          return true;
        };
        out_mu.AwaitWithTimeout(absl::Condition(&printed), absl::Seconds(3));
      }
      for (const v1::StageInfo& stage : run.stages()) {
        if (IsTerminal(stage.state()) != endings) continue;
        v1::StageInfo& before = seen[stage.name()];
        const bool changed = before.state() != stage.state() || before.attempt() != stage.attempt() ||
                             before.message() != stage.message();
        if (changed && stage.state() != v1::STAGE_PENDING) {
          std::string text = Word(stage.state());
          if (stage.state() == v1::STAGE_ASSIGNED || stage.state() == v1::STAGE_RUNNING) {
            absl::StrAppend(&text, " on ", stage.agent(), " (attempt ", stage.attempt(), ")");
          }
          if (!stage.message().empty() && (endings || stage.message() != before.message())) {
            absl::StrAppend(&text, ": ", stage.message());
          }
          if (endings && following.count({stage.name(), stage.attempt()}) != 0) {
            // Its follower prints this after the attempt's last log line.
            absl::MutexLock lock(&out_mu);
            endings_due[{stage.name(), stage.attempt()}] = text;
            deferred.emplace_back(stage.name(), stage.attempt());
          } else {
            say(stage.name(), text);
          }
        }
        before = stage;
      }
    }
    for (const v1::StageInfo& stage : run.stages()) {
      if (stage.attempt() > 0 && following.insert({stage.name(), stage.attempt()}).second) {
        followers.emplace_back([&client, &out, &out_mu, &err, &endings_due, &status, run_id = run_id,
                                name = stage.name(), attempt = stage.attempt(), p = prefix(stage.name())] {
          PrefixedPrinter printer(out, out_mu, p, &status);
          absl::Status st = client.ReadLog(run_id, name, attempt, /*follow=*/true,
                                           [&](std::string_view data) { printer.Write(data); });
          printer.Flush();
          absl::MutexLock lock(&out_mu);
          if (!st.ok()) err << "dockyard: log of " << name << ": " << st.message() << "\n";
          // The log closes when the attempt ends; its end state arrives with the
          // next run snapshot, normally within a poll interval.
          const std::pair<std::string, int> key{name, attempt};
          auto due = [&] { return endings_due.count(key) != 0; };
          out_mu.AwaitWithTimeout(absl::Condition(&due), absl::Seconds(3));
          if (auto it = endings_due.find(key); it != endings_due.end()) {
            status.Clear(out);
            out << p << "==> " << it->second << "\n";
            status.Draw(out);
            out << std::flush;
            endings_due.erase(it);
          }
        });
      }
    }
  });
  for (std::thread& t : followers) t.join();
  watch_over.Notify();
  if (ticker.joinable()) ticker.join();
  {
    absl::MutexLock lock(&out_mu);
    status.Clear(out);
    status.text.clear();
  }
  for (const auto& [key, text] : endings_due) out << prefix(key.first) << "==> " << text << "\n";
  if (!watched.ok()) return ReportError(watched, err);
  if (!IsFinished(last.state())) {
    err << "dockyard: lost track of run " << run_id << "; see `dockyard status " << run_id << "`\n";
    return kExitUnavailable;
  }

  if (!options.junit_file.empty()) {
    if (absl::Status st = WriteJunit(client, last, options.junit_file); !st.ok()) {
      err << "dockyard: JUnit report " << options.junit_file << ": " << st.message() << "\n";
    }
  }
  auto published = client.ListArtifacts(run_id);
  PrintSummary(out, last, published.ok() ? *published : std::vector<v1::Artifact>{});
  const double seconds = (last.finished_unix_ms() - last.created_unix_ms()) / 1000.0;
  if (last.state() != v1::RUN_SUCCEEDED) {
    out << "run " << run_id << " " << Word(last.state()) << " after " << absl::StrFormat("%.1fs", seconds)
        << (last.message().empty() ? "" : ": ") << last.message() << "\n";
    // Test reports matter most now: fetched even though the run failed.
    if (options.download_artifacts) {
      (void)DownloadAll(client, run_id, options.artifacts_dir, options.progress, out, err, /*reports_only=*/true);
    }
    return ExitCodeFor(last.state());
  }
  out << "run " << run_id << " succeeded in " << absl::StrFormat("%.1fs", seconds) << "\n";
  if (!options.download_artifacts) return kExitOk;
  return DownloadAll(client, run_id, options.artifacts_dir, options.progress, out, err);
}

}  // namespace dockyard
