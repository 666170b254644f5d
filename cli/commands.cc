#include "cli/commands.h"

#include "cli/cache_consistency.h"
#include "common/units.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/names.h"
#include "common/pipeline_parser.h"
#include "common/utf8.h"
#include "common/states.h"
#include "common/tar_archive.h"
#include "cli/json_output.h"
#include "cli/run_follower.h"
#include "cli/text.h"

namespace dockyard {
namespace {

// Calls that download small artifacts at once (a constant: it trades round trips for
// threads, it bounds nothing a user meets).
constexpr int kParallelDownloads = 8;

}  // namespace

int DownloadAll(DockyardClient& client, const std::string& run_id, const std::string& dest, bool progress,
                std::ostream& out, std::ostream& err, bool reports_only) {
  auto artifacts = client.ListArtifacts(run_id);
  if (!artifacts.ok()) return ReportError(artifacts.status(), err);
  std::erase_if(*artifacts, [](const v1::Artifact& a) { return !a.service().empty(); });  // `logs --service`
  if (reports_only) std::erase_if(*artifacts, [](const v1::Artifact& a) { return !a.report(); });
  if (artifacts->empty()) return kExitOk;
  std::error_code ec;
  std::filesystem::create_directories(dest, ec);
  if (ec) {
    err << "dockyard: cannot create " << dest << ": " << ec.message() << "\n";
    return kExitBadInput;
  }
  std::map<std::string, int> publishers;  // file name -> how many stages publish it
  for (const v1::Artifact& artifact : *artifacts) publishers[artifact.name()] += artifact.report() ? 0 : 1;
  std::vector<std::string> paths;  // where each goes
  for (const v1::Artifact& artifact : *artifacts) {
    // Names come over the wire: never let one point outside dest/.
    if (!PlainFileName(artifact.name()) || !IsSafeName(artifact.stage())) {
      err << "dockyard: refusing artifact \"" << SanitizeUtf8(artifact.stage()) << "/" << SanitizeUtf8(artifact.name())
          << "\": not a plain file name\n";
      return kExitUnavailable;
    }
    // A name one stage publishes lands in dest/; names several stages publish land
    // in dest/<stage>/, so none overwrites another.
    std::filesystem::path where(dest);
    if (artifact.report()) {
      where = where / "reports" / artifact.stage();
      std::filesystem::create_directories(where, ec);
    } else if (publishers[artifact.name()] > 1) {
      where /= artifact.stage();
      std::filesystem::create_directories(where, ec);
    }
    paths.push_back((where / artifact.name()).string());
  }
  // Files of up to 4 MiB come in a few calls side by side (thousands of small ones
  // cost round trips, not bandwidth); larger ones one at a time, with progress.
  constexpr int64_t kProgressBytes = 4 << 20;
  std::vector<std::vector<size_t>> groups(kParallelDownloads);  // small files, by call
  size_t small = 0;
  for (size_t i = 0; i < artifacts->size(); ++i) {
    if ((*artifacts)[i].size() <= kProgressBytes) groups[small++ % groups.size()].push_back(i);
  }
  std::vector<absl::Status> results(artifacts->size());
  std::vector<std::thread> workers;
  for (const std::vector<size_t>& group : groups) {
    if (group.empty()) continue;
    workers.emplace_back([&, &group = group] {
      std::vector<const v1::Artifact*> which;
      std::vector<std::string> where;
      for (size_t i : group) {
        which.push_back(&(*artifacts)[i]);
        where.push_back(paths[i]);
      }
      size_t in_place = 0;
      absl::Status st = client.DownloadArtifacts(run_id, which, where, in_place);
      if (absl::IsUnimplemented(st)) {  // a controller older than DownloadArtifacts: a call per file
        st = absl::OkStatus();
        for (size_t k = in_place; st.ok() && k < group.size(); ++k) {
          st = client.DownloadArtifact(*which[k], where[k], [](int64_t) {});
          if (!st.ok()) in_place = k;
        }
      }
      if (!st.ok()) results[group[std::min(in_place, group.size() - 1)]] = st;  // the file it failed on
    });
  }
  for (std::thread& worker : workers) worker.join();
  for (size_t i = 0; i < artifacts->size(); ++i) {
    const v1::Artifact& artifact = (*artifacts)[i];
    if (artifact.size() > kProgressBytes) {
      auto show = [&](int64_t done) {
        if (progress) {
          out << absl::StrFormat("\r  %s  %s / %s", artifact.name(), HumanBytes(done), HumanBytes(artifact.size()))
              << std::flush;
        }
      };
      results[i] = client.DownloadArtifact(artifact, paths[i], show);
      if (progress) out << "\r";
    }
    if (!results[i].ok()) {
      err << "dockyard: artifact " << artifact.name() << ": " << results[i].message() << "\n";
      return kExitUnavailable;
    }
    out << "  " << paths[i] << "  (" << HumanBytes(artifact.size()) << ", sha256 " << artifact.sha256().substr(0, 16)
        << "…, from stage " << artifact.stage() << ")\n";
  }
  return kExitOk;
}

bool PlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos && IsValidUtf8(name);
}

int ExitCodeFor(v1::RunState state) {
  switch (state) {
    case v1::RUN_FAILED: return kExitRunFailed;
    case v1::RUN_CANCELLED: return kExitCancelled;
    default: return kExitOk;
  }
}

int ReportError(const absl::Status& status, std::ostream& err) {
  err << "dockyard: " << status.message() << "\n";
  if (absl::IsInvalidArgument(status) || absl::IsNotFound(status)) return kExitBadInput;
  if (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status)) return kExitDenied;
  return kExitUnavailable;
}

int RunPipeline(DockyardClient& client, const std::string& file, const RunCommandOptions& options,
                std::ostream& out, std::ostream& err) {
  auto parsed = ParsePipelineFile(file, options.limits);
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
    // With --detach stdout carries only the answer (a run id, or JSON).
    (options.detach ? err : out) << "source " << parsed->source_dir << " (" << HumanBytes(static_cast<int64_t>(size))
                                 << ", sha256 " << digest->substr(0, 12) << ")\n";
  }

  auto submitted = client.Submit(pipeline, options.idempotency_key);
  if (!submitted.ok()) return ReportError(submitted.status(), err);
  const std::string run_id = submitted->run_id();
  if (options.detach) {
    if (options.json) {
      out << nlohmann::json{{"run_id", run_id}, {"existing", submitted->existing()}}.dump() << "\n";
    } else {
      out << run_id << "\n";
    }
    return kExitOk;
  }
  if (options.on_submitted) options.on_submitted(run_id);
  if (submitted->existing()) {
    out << "run " << run_id << " was submitted before with this idempotency key: following it from the start\n"
        << std::flush;
  } else {
    out << "run " << run_id << " submitted: pipeline " << pipeline.name() << ", " << pipeline.stages_size()
        << " stage" << (pipeline.stages_size() == 1 ? "" : "s") << "\n"
        << std::flush;
  }

  return FollowRun(client, run_id, options, out, err);
}

int ShowStatus(DockyardClient& client, const std::string& run_id, bool json, bool long_digests, std::ostream& out,
               std::ostream& err) {
  auto run = client.GetRun(run_id);
  if (!run.ok()) return ReportError(run.status(), err);
  if (json) {
    out << RunJson(*run) << "\n";
    return ExitCodeFor(run->state());
  }
  out << "run " << run->id() << "  pipeline " << run->pipeline_name() << "  " << Word(run->state())
      << (run->message().empty() ? "" : ": ") << run->message() << "\n";
  auto digest = [&](const std::string& d) {
    if (d.empty()) return std::string("empty");
    return long_digests ? d : d.substr(0, 12);
  };
  for (const v1::StageInfo& stage : run->stages()) {
    std::string line = absl::StrFormat("  %-20s %-10s", stage.name(), Word(stage.state()));
    if (stage.attempt() > 0) absl::StrAppend(&line, " attempt ", stage.attempt(), " on ", stage.agent());
    if (!stage.message().empty()) absl::StrAppend(&line, "  ", stage.message());
    out << line << "\n";
    if (!stage.image_id().empty()) {
      const std::string id(absl::StripPrefix(stage.image_id(), "sha256:"));
      out << "      image " << stage.image() << "  " << (long_digests ? id : id.substr(0, 12)) << "\n";
    }
    for (const v1::CacheDigests& cache : stage.caches()) {
      out << "      cache " << cache.name() << "  in " << digest(cache.consumed()) << "  out "
          << (cache.produced().empty() ? "-" : digest(cache.produced())) << "\n";
    }
  }
  if (UsesCaches(*run)) {
    const std::vector<std::string> problems = CacheInconsistencies(*run);
    if (problems.empty()) {
      out << "caches: consistent (each stage started from what the stage before it left)\n";
    } else {
      for (const std::string& problem : problems) out << "caches: INCONSISTENT: " << problem << "\n";
    }
  }
  return ExitCodeFor(run->state());
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

int ShowServiceLog(DockyardClient& client, const std::string& run_id, const std::string& stage,
                   const std::string& service, std::ostream& out, std::ostream& err) {
  auto artifacts = client.ListArtifacts(run_id);
  if (!artifacts.ok()) return ReportError(artifacts.status(), err);
  std::vector<std::string> kept;
  for (const v1::Artifact& artifact : *artifacts) {
    if (artifact.stage() != stage || artifact.service().empty()) continue;
    if (artifact.service() != service) {
      kept.push_back(artifact.service());
      continue;
    }
    char tmpl[] = "/tmp/dockyard-service-log-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) {
      err << "dockyard: cannot make a temporary file: " << std::strerror(errno) << "\n";
      return kExitBadInput;
    }
    ::close(fd);
    absl::Status st = client.DownloadArtifact(artifact, tmpl, [](int64_t) {});
    if (st.ok()) {
      std::ifstream in(tmpl, std::ios::binary);
      out << in.rdbuf();
      out.flush();
    }
    std::remove(tmpl);
    return st.ok() ? kExitOk : ReportError(st, err);
  }
  err << "dockyard: run " << run_id << " keeps no log of a service " << service << " of stage " << stage
      << (kept.empty() ? std::string(" (its services' logs are kept once the stage has ended, unless it was cancelled)")
                       : absl::StrCat(" (it keeps: ", absl::StrJoin(kept, ", "), ")"))
      << "\n";
  return kExitBadInput;
}

int ListCaches(DockyardClient& client, bool json, std::ostream& out, std::ostream& err) {
  auto caches = client.ListCaches();
  if (!caches.ok()) return ReportError(caches.status(), err);
  if (json) {
    out << CachesJson(*caches) << "\n";
    return kExitOk;
  }
  int64_t total = 0;
  out << absl::StrFormat("%-12s %-28s %10s %7s %-20s %-20s %s\n", "CACHE", "KEY", "SIZE", "FILES", "LAST USED",
                         "HOLDER", "SNAPSHOT");
  for (const v1::CacheInfo& c : caches->caches()) {
    total += c.bytes();
    out << absl::StrFormat(
        "%-12s %-28s %10s %7d %-20s %-20s %s\n", c.cache(), c.key(), FormatBytes(c.bytes()), c.files(),
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(c.last_used_unix_ms()), absl::UTCTimeZone()),
        c.holder().empty() ? "-" : c.holder(), c.snapshot().substr(0, 12));
  }
  out << caches->caches_size() << " keyed cache(s), " << FormatBytes(total) << " of "
      << FormatBytes(caches->max_bytes()) << " (--cache_max_bytes; the least recently used go first)\n";
  return kExitOk;
}

int ListAgents(DockyardClient& client, bool json, std::ostream& out, std::ostream& err) {
  auto agents = client.ListAgents();
  if (!agents.ok()) return ReportError(agents.status(), err);
  if (json) {
    out << AgentsJson(*agents) << "\n";
    return kExitOk;
  }
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
              bool json, std::ostream& out, std::ostream& err) {
  if (!dest.empty()) return DownloadAll(client, run_id, dest, progress, out, err);
  auto artifacts = client.ListArtifacts(run_id);
  if (!artifacts.ok()) return ReportError(artifacts.status(), err);
  if (json) {
    out << ArtifactsJson(run_id, *artifacts) << "\n";
    return kExitOk;
  }
  std::erase_if(*artifacts, [](const v1::Artifact& a) { return !a.service().empty(); });  // `logs --service`
  for (const v1::Artifact& a : *artifacts) {
    out << absl::StrFormat("%-50s %10s  sha256 %s  stage %s\n", a.name(), HumanBytes(a.size()), a.sha256(), a.stage());
  }
  return kExitOk;
}

int CollectGarbage(DockyardClient& client, bool dry_run, std::ostream& out, std::ostream& err) {
  auto report = client.CollectGarbage(dry_run);
  if (!report.ok()) return ReportError(report.status(), err);
  const char* verb = dry_run ? "would remove" : "removed";
  out << verb << " " << report->runs_size() << " finished runs"
      << (report->runs().empty() ? "" : ": " + absl::StrJoin(report->runs(), " ")) << "\n";
  out << verb << " " << report->blobs() << " blobs nothing else references (" << HumanBytes(report->blob_bytes())
      << ")\n";
  return kExitOk;
}

int CancelRun(DockyardClient& client, const std::string& run_id, std::ostream& out, std::ostream& err) {
  if (absl::Status st = client.CancelRun(run_id); !st.ok()) return ReportError(st, err);
  out << "run " << run_id << " cancelled\n";
  return kExitOk;
}

}  // namespace dockyard
