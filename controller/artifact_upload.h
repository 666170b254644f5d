// Receives one UploadArtifact call: a stage attempt's files, each a header, its data
// and (when streamed, hashed by the agent as it read them) an end giving its sha256,
// then a commit. Every file is verified as it ends; the call's files are published
// together at the commit (one flush to disk, one save of the index), none when the
// call breaks off first.
// Disk and hashing run on a WorkerPool; the reactions only move buffers.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/worker_pool.h"
#include "controller/identity_store.h"
#include "controller/controller_core.h"
#include "dockyard/v1/agent.pb.h"

namespace dockyard {

class ArtifactUploadReactor final : public grpc::ServerReadReactor<v1::UploadArtifactRequest> {
 public:
  // `agent`: the authenticated caller, who must hold the attempt the files belong to.
  ArtifactUploadReactor(ControllerCore* core, WorkerPool* pool, Caller agent, std::string peer,
                        v1::UploadArtifactResponse* response);

  void OnReadDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  // On the pool: consumes what was read, in order, until the queue is empty.
  void Drain();
  absl::Status Consume(const v1::UploadArtifactRequest& request);
  absl::Status Begin(const v1::ArtifactHeader& header);
  // Verifies the file begun last (`sha256` from its end, or "" for its header's).
  absl::Status EndFile(const std::string& sha256);
  void Complete();
  void FinishWith(const absl::Status& status);

  ControllerCore* core_;
  WorkerPool* pool_;
  const Caller agent_;
  const std::string peer_;
  v1::UploadArtifactResponse* response_;
  // Messages read ahead of the pool's writing, at most kMaxQueued (1 MiB each).
  static constexpr size_t kMaxQueued = 8;
  absl::Mutex mu_;
  v1::UploadArtifactRequest request_ ABSL_GUARDED_BY(mu_);  // being read
  std::deque<v1::UploadArtifactRequest> queue_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;     // a Drain is posted or running
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;  // the queue was full
  bool input_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;

  // Below: only the Drain on the pool touches these.

  std::optional<v1::StageRef> stage_;                    // the attempt, once checked
  std::optional<v1::ArtifactHeader> open_;               // the file being received
  std::unique_ptr<BlobStore::Writer> writer_;            // its data; none when already held
  std::vector<std::unique_ptr<BlobStore::Writer>> sealed_;  // verified, not yet published
  std::set<std::string> received_;                       // digests of sealed_
  bool streamed_ = false;                                // a file's digest came at its end
  bool committed_ = false;
  std::vector<v1::Artifact> artifacts_;                  // what the call publishes
};

}  // namespace dockyard
