// ControllerCore's retention: which runs go (retention.h decides), deleting them
// from the state store, the log store and the scheduler, then a mark-and-sweep of
// the blob store against what the remaining runs and logs reference.
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "controller/controller_core.h"

namespace dockyard {

absl::StatusOr<ControllerCore::GarbageReport> ControllerCore::CollectGarbage(bool dry_run) {
  absl::MutexLock collecting(&gc_mu_);
  GarbageReport report;
  // Digests the remaining runs use: their sources and artifacts.
  auto referenced = [this](const std::set<std::string>& expired) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::set<std::string> live;
    for (const Scheduler::RunSummary& run : scheduler_.RunSummaries()) {
      if (expired.count(run.id) > 0) continue;
      if (!run.source_digest.empty()) live.insert(run.source_digest);
      auto artifacts = artifacts_.find(run.id);
      if (artifacts == artifacts_.end()) continue;
      for (const v1::Artifact& artifact : artifacts->second) live.insert(artifact.sha256());
    }
    return live;
  };
  std::set<std::string> expired;
  {
    absl::MutexLock lock(&mu_);
    report.runs = ExpiredRuns(scheduler_.RunSummaries(), options_.retention, absl::Now());
    expired.insert(report.runs.begin(), report.runs.end());
    if (!dry_run) {
      scheduler_.ForgetRuns(report.runs);
      for (const std::string& id : report.runs) artifacts_.erase(id);
    }
  }
  if (!dry_run && !report.runs.empty()) {
    RETURN_IF_ERROR(state_->DeleteRuns(report.runs));
    for (const std::string& id : report.runs) RETURN_IF_ERROR(logs_.RemoveRun(id));
    Logger("controller")->info("retention: removed runs {} with their logs", absl::StrJoin(report.runs, ","));
  }

  // Sweep: blobs nothing references that are older than the grace (a source or an
  // artifact on its way into a run is younger). Listed before the log archives are
  // asked for, so a log archived meanwhile is known by then.
  const absl::Time cutoff = absl::Now() - options_.blob_grace;
  std::vector<BlobStore::Listed> listed = blobs_->List();
  ASSIGN_OR_RETURN(std::set<std::string> archived,
                   logs_.backend().ArchiveDigests(dry_run ? expired : std::set<std::string>()));
  std::vector<BlobStore::Listed> candidates;
  for (BlobStore::Listed& blob : listed) {
    if (blob.stored <= cutoff && archived.count(blob.sha256) == 0) candidates.push_back(std::move(blob));
  }
  std::set<std::string> live;
  {
    absl::MutexLock lock(&mu_);  // as late as possible: a run submitted meanwhile counts
    live = referenced(dry_run ? expired : std::set<std::string>());
  }
  for (const BlobStore::Listed& blob : candidates) {
    if (live.count(blob.sha256) > 0) continue;
    if (!dry_run) RETURN_IF_ERROR(blobs_->Remove(blob.sha256));
    ++report.blobs;
    report.blob_bytes += blob.size;
  }
  if (!dry_run && report.blobs > 0) {
    Logger("controller")->info("retention: removed {} blobs ({} bytes) nothing references", report.blobs,
                               report.blob_bytes);
  }
  return report;
}

}  // namespace dockyard
