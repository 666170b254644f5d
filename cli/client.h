// The CLI's view of a controller: RunService calls with deadlines, and followers
// (run state, logs) that resume from where they were when the connection drops.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/client_security.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard {

class DockyardClient {
 public:
  DockyardClient(const std::string& address, ClientSecurity security);

  // Uploads the tar at `path` unless the controller has it; returns its digest.
  absl::StatusOr<std::string> UploadSource(const std::string& path);
  // The run id, and whether `idempotency_key` named an earlier run.
  absl::StatusOr<v1::SubmitRunResponse> Submit(const v1::Pipeline& pipeline, const std::string& idempotency_key = "");
  absl::StatusOr<v1::Run> GetRun(const std::string& run_id);
  absl::Status CancelRun(const std::string& run_id);
  absl::StatusOr<std::vector<v1::AgentInfo>> ListAgents();
  absl::Status DrainAgent(const std::string& name, bool undo);
  absl::StatusOr<v1::CollectGarbageResponse> CollectGarbage(bool dry_run);
  absl::StatusOr<std::vector<v1::Artifact>> ListArtifacts(const std::string& run_id);

  // Calls `on_change` with the run now and after every change until it finishes.
  // Rides out a controller that is briefly unreachable (up to `patience`).
  absl::Status WatchRun(const std::string& run_id, const std::function<void(const v1::Run&)>& on_change,
                        absl::Duration patience = absl::Minutes(2));
  // Calls `on_data` with the log of a stage attempt (0 = current) from its start;
  // with `follow`, until the attempt ends. Resumes at its offset after a reconnect.
  absl::Status ReadLog(const std::string& run_id, const std::string& stage, int attempt, bool follow,
                       const std::function<void(std::string_view)>& on_data,
                       absl::Duration patience = absl::Minutes(2));
  // Downloads an artifact to `dest` (written to a temp file, verified against its
  // sha256, then renamed). `on_progress(bytes_so_far)` after each chunk.
  absl::Status DownloadArtifact(const v1::Artifact& artifact, const std::string& dest,
                                const std::function<void(int64_t)>& on_progress);
  // Downloads artifacts of run `run_id` in one call, each to its `dests` entry and
  // verified as DownloadArtifact does. A cut call resumes after the files already in
  // place; the first error is the answer, and `in_place` says how many came before it.
  absl::Status DownloadArtifacts(const std::string& run_id, const std::vector<const v1::Artifact*>& artifacts,
                                 const std::vector<std::string>& dests, size_t& in_place);

  // --- administration (role admin) ---
  absl::StatusOr<v1::SecretResponse> CreateEnrolToken(int uses, absl::Duration ttl);
  // Returns how many running stages were re-queued.
  absl::StatusOr<int> RevokeAgent(const std::string& name);
  absl::StatusOr<v1::SecretResponse> CreateToken(v1::Role role, const std::string& name);
  absl::StatusOr<std::vector<v1::TokenInfo>> ListTokens();
  absl::Status RevokeToken(const std::string& id);
  absl::StatusOr<v1::ListCachesResponse> ListCaches();
  // Returns whether an earlier value was replaced.
  absl::StatusOr<bool> SetSecret(const std::string& name, const std::string& value);
  absl::StatusOr<std::vector<v1::SecretInfo>> ListSecrets();
  absl::Status DeleteSecret(const std::string& name);

 private:
  // A retried unary call; errors explained for people.
  absl::Status Call(const std::function<grpc::Status(grpc::ClientContext&)>& call);
  absl::Status Explain(const absl::Status& status) const;

  ClientSecurity security_;
  std::unique_ptr<v1::RunService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

}  // namespace dockyard
