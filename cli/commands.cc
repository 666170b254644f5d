#include "cli/commands.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/pipeline_parser.h"
#include "common/states.h"
#include "common/tar_archive.h"

namespace dockyard {
namespace {

std::string Word(v1::StageState state) {
  return absl::AsciiStrToLower(absl::StrReplaceAll(absl::StripPrefix(v1::StageState_Name(state), "STAGE_"),
                                                   {{"_", " "}}));
}

std::string Word(v1::RunState state) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::RunState_Name(state), "RUN_"));
}

std::string HumanBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (1 << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

// Writes log data with a per-stage prefix, whole lines at a time, so stages that run
// at once interleave by line and never mid-line.
class PrefixedPrinter {
 public:
  PrefixedPrinter(std::ostream& out, absl::Mutex& mu, std::string prefix)
      : out_(out), mu_(mu), prefix_(std::move(prefix)) {}
  ~PrefixedPrinter() { Flush(); }

  void Write(std::string_view data) {
    partial_.append(data.data(), data.size());
    size_t end = partial_.rfind('\n');
    if (end == std::string::npos) return;
    Emit(std::string_view(partial_).substr(0, end + 1));
    partial_.erase(0, end + 1);
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
    out_ << text << std::flush;
  }

  std::ostream& out_;
  absl::Mutex& mu_;
  const std::string prefix_;
  std::string partial_;
};

int DownloadAll(DockyardClient& client, const std::string& run_id, const std::string& dest, bool progress,
                std::ostream& out, std::ostream& err) {
  auto artifacts = client.ListArtifacts(run_id);
  if (!artifacts.ok()) return ReportError(artifacts.status(), err);
  if (artifacts->empty()) return kExitOk;
  std::error_code ec;
  std::filesystem::create_directories(dest, ec);
  if (ec) {
    err << "dockyard: cannot create " << dest << ": " << ec.message() << "\n";
    return kExitBadInput;
  }
  for (const v1::Artifact& artifact : *artifacts) {
    const std::string path = (std::filesystem::path(dest) / artifact.name()).string();
    auto show = [&](int64_t done) {
      if (progress && artifact.size() > (4 << 20)) {
        out << absl::StrFormat("\r  %s  %s / %s", artifact.name(), HumanBytes(done), HumanBytes(artifact.size()))
            << std::flush;
      }
    };
    absl::Status st = client.DownloadArtifact(artifact, path, show);
    if (progress && artifact.size() > (4 << 20)) out << "\r";
    if (!st.ok()) {
      err << "dockyard: artifact " << artifact.name() << ": " << st.message() << "\n";
      return kExitUnavailable;
    }
    out << "  " << path << "  (" << HumanBytes(artifact.size()) << ", sha256 " << artifact.sha256().substr(0, 16)
        << "…, from stage " << artifact.stage() << ")\n";
  }
  return kExitOk;
}

}  // namespace

int ReportError(const absl::Status& status, std::ostream& err) {
  err << "dockyard: " << status.message() << "\n";
  if (absl::IsInvalidArgument(status) || absl::IsNotFound(status)) return kExitBadInput;
  if (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status)) return kExitDenied;
  return kExitUnavailable;
}

int RunPipeline(DockyardClient& client, const std::string& file, const RunCommandOptions& options,
                std::ostream& out, std::ostream& err) {
  auto parsed = ParsePipelineFile(file);
  if (!parsed.ok()) {
    err << "dockyard: " << parsed.status().message() << "\n";
    return kExitBadInput;
  }
  v1::Pipeline pipeline = parsed->pipeline;

  if (!parsed->source_dir.empty()) {
    const std::string tar = absl::StrCat(std::filesystem::temp_directory_path().string(), "/dockyard-source-",
                                         ::getpid(), ".tar");
    absl::Status packed = PackDirectory(parsed->source_dir, tar);
    if (!packed.ok()) {
      err << "dockyard: packing " << parsed->source_dir << ": " << packed.message() << "\n";
      return kExitBadInput;
    }
    auto size = std::filesystem::file_size(tar);
    auto digest = client.UploadSource(tar);
    std::error_code ec;
    std::filesystem::remove(tar, ec);
    if (!digest.ok()) return ReportError(digest.status(), err);
    pipeline.set_source_digest(*digest);
    out << "source " << parsed->source_dir << " (" << HumanBytes(static_cast<int64_t>(size)) << ", sha256 "
        << digest->substr(0, 12) << ")\n";
  }

  auto run_id = client.Submit(pipeline);
  if (!run_id.ok()) return ReportError(run_id.status(), err);
  if (options.on_submitted) options.on_submitted(*run_id);
  out << "run " << *run_id << " submitted: pipeline " << pipeline.name() << ", " << pipeline.stages_size()
      << " stage" << (pipeline.stages_size() == 1 ? "" : "s") << "\n"
      << std::flush;

  size_t width = 0;
  for (const v1::Stage& stage : pipeline.stages()) width = std::max(width, stage.name().size());
  auto prefix = [&](const std::string& stage) {
    return absl::StrCat(stage, std::string(width - stage.size(), ' '), " | ");
  };

  absl::Mutex out_mu;
  std::map<std::string, v1::StageInfo> seen;
  std::set<std::pair<std::string, int>> following;
  std::map<std::pair<std::string, int>, std::string> endings_due;  // guarded by out_mu
  std::vector<std::thread> followers;
  v1::Run last;
  auto say = [&](const std::string& stage, const std::string& text) {
    absl::MutexLock lock(&out_mu);
    out << prefix(stage) << "==> " << text << "\n" << std::flush;
  };

  absl::Status watched = client.WatchRun(*run_id, [&](const v1::Run& run) {
    last = run;
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
        followers.emplace_back([&client, &out, &out_mu, &err, &endings_due, run_id = *run_id,
                                name = stage.name(), attempt = stage.attempt(), p = prefix(stage.name())] {
          PrefixedPrinter printer(out, out_mu, p);
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
            out << p << "==> " << it->second << "\n" << std::flush;
            endings_due.erase(it);
          }
        });
      }
    }
  });
  for (std::thread& t : followers) t.join();
  for (const auto& [key, text] : endings_due) out << prefix(key.first) << "==> " << text << "\n";
  if (!watched.ok()) return ReportError(watched, err);
  if (!IsFinished(last.state())) {
    err << "dockyard: lost track of run " << *run_id << "; see `dockyard status " << *run_id << "`\n";
    return kExitUnavailable;
  }

  const double seconds = (last.finished_unix_ms() - last.created_unix_ms()) / 1000.0;
  if (last.state() != v1::RUN_SUCCEEDED) {
    out << "run " << *run_id << " " << Word(last.state()) << " after " << absl::StrFormat("%.1fs", seconds)
        << (last.message().empty() ? "" : ": ") << last.message() << "\n";
    return kExitRunFailed;
  }
  out << "run " << *run_id << " succeeded in " << absl::StrFormat("%.1fs", seconds) << "\n";
  if (!options.download_artifacts) return kExitOk;
  return DownloadAll(client, *run_id, options.artifacts_dir, options.progress, out, err);
}

int ShowStatus(DockyardClient& client, const std::string& run_id, std::ostream& out, std::ostream& err) {
  auto run = client.GetRun(run_id);
  if (!run.ok()) return ReportError(run.status(), err);
  out << "run " << run->id() << "  pipeline " << run->pipeline_name() << "  " << Word(run->state())
      << (run->message().empty() ? "" : ": ") << run->message() << "\n";
  for (const v1::StageInfo& stage : run->stages()) {
    std::string line = absl::StrFormat("  %-20s %-10s", stage.name(), Word(stage.state()));
    if (stage.attempt() > 0) absl::StrAppend(&line, " attempt ", stage.attempt(), " on ", stage.agent());
    if (!stage.message().empty()) absl::StrAppend(&line, "  ", stage.message());
    out << line << "\n";
  }
  return run->state() == v1::RUN_FAILED || run->state() == v1::RUN_CANCELLED ? kExitRunFailed : kExitOk;
}

int ShowLogs(DockyardClient& client, const std::string& run_id, const std::string& stage, int attempt,
             bool follow, std::ostream& out, std::ostream& err) {
  absl::Status st = client.ReadLog(run_id, stage, attempt, follow, [&](std::string_view data) {
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
  });
  if (!st.ok()) return ReportError(st, err);
  return kExitOk;
}

int ListAgents(DockyardClient& client, std::ostream& out, std::ostream& err) {
  auto agents = client.ListAgents();
  if (!agents.ok()) return ReportError(agents.status(), err);
  if (agents->empty()) out << "no agents have connected\n";
  for (const v1::AgentInfo& agent : *agents) {
    const char* state = !agent.connected() ? "disconnected" : agent.draining() ? "draining" : "connected";
    out << absl::StrFormat("%-20s %-12s slots %d/%d busy  labels [%s]  version %s\n", agent.name(), state,
                           agent.busy(), agent.slots(),
                           absl::StrJoin(agent.labels(), ","), agent.version());
  }
  return kExitOk;
}

int DrainAgent(DockyardClient& client, const std::string& name, bool undo, std::ostream& out, std::ostream& err) {
  if (absl::Status st = client.DrainAgent(name, undo); !st.ok()) return ReportError(st, err);
  out << "agent " << name << (undo ? " takes stages again\n" : " is draining: running stages finish, no new ones start\n");
  return kExitOk;
}

int Artifacts(DockyardClient& client, const std::string& run_id, const std::string& dest, bool progress,
              std::ostream& out, std::ostream& err) {
  if (!dest.empty()) return DownloadAll(client, run_id, dest, progress, out, err);
  auto artifacts = client.ListArtifacts(run_id);
  if (!artifacts.ok()) return ReportError(artifacts.status(), err);
  for (const v1::Artifact& a : *artifacts) {
    out << absl::StrFormat("%-50s %10s  sha256 %s  stage %s\n", a.name(), HumanBytes(a.size()), a.sha256(), a.stage());
  }
  return kExitOk;
}

int CancelRun(DockyardClient& client, const std::string& run_id, std::ostream& out, std::ostream& err) {
  if (absl::Status st = client.CancelRun(run_id); !st.ok()) return ReportError(st, err);
  out << "run " << run_id << " cancelled\n";
  return kExitOk;
}

}  // namespace dockyard
