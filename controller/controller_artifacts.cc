// ControllerCore: the artifact index (what each run published) and who may read it.
#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "controller/controller_core.h"

namespace dockyard {

absl::Status ControllerCore::CheckArtifactFetch(const std::string& agent, const std::string& run_id,
                                                const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  if (!agent.empty() && !scheduler_.HoldsAttemptOf(agent, run_id)) {
    return absl::PermissionDeniedError(absl::StrCat("agent ", agent, " holds no stage of run ", run_id));
  }
  for (const v1::Artifact& artifact : artifacts_[run_id]) {
    if (artifact.sha256() == sha256) return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("run ", run_id, " published no artifact ", sha256));
}

absl::Status ControllerCore::RecordArtifacts(const std::vector<v1::Artifact>& artifacts) {
  {
    absl::MutexLock lock(&mu_);
    for (const v1::Artifact& artifact : artifacts) {
      auto& list = artifacts_[artifact.run_id()];
      // Artifacts are named per stage: another stage may publish the same file name.
      auto same = std::find_if(list.begin(), list.end(), [&](const v1::Artifact& existing) {
        return existing.name() == artifact.name() && existing.stage() == artifact.stage() &&
               existing.service() == artifact.service();
      });
      if (same != list.end()) {
        *same = artifact;  // a re-run attempt publishes again
      } else {
        list.push_back(artifact);
      }
      unsaved_artifacts_.push_back(artifact);
    }
    Persist();
  }
  persister_->Sync();
  return absl::OkStatus();
}

std::vector<v1::Artifact> ControllerCore::Artifacts(const std::string& run_id, const ArtifactFilter& which) {
  absl::MutexLock lock(&mu_);
  auto it = artifacts_.find(run_id);
  if (it == artifacts_.end()) return {};
  if (!which) return it->second;
  std::vector<v1::Artifact> chosen;
  std::copy_if(it->second.begin(), it->second.end(), std::back_inserter(chosen), which);
  return chosen;
}

}  // namespace dockyard
