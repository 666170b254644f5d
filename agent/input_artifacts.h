// A stage's `inputs`: the artifacts of stages it needs, fetched from the controller
// by digest (once per agent, into <dir>/<sha256>), each checked against its digest,
// and packed into a tar that puts every file under its directory in the container.
// Where the producer ran does not matter. The directory is bounded: past `max_bytes`
// the least recently used files go (never one a stage is being given). Thread-safe;
// blocking (gRPC, disk).
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class InputArtifacts {
 public:
  // `stub` must outlive it.
  InputArtifacts(v1::AgentService::Stub* stub, std::string dir, int64_t max_bytes = 0);

  // Writes the tar placing `assignment`'s input artifacts (entries relative to "/")
  // to `out_tar`. Returns a line for the stage log. DATA_LOSS naming an artifact
  // whose bytes do not match its digest.
  absl::StatusOr<std::string> Pack(const v1::StageAssignment& assignment, const std::string& out_tar);

 private:
  absl::Status Fetch(const std::string& run_id, const v1::InputArtifact& input) ABSL_LOCKS_EXCLUDED(fetch_mu_);

  v1::AgentService::Stub* stub_;
  const std::string dir_;
  const int64_t max_bytes_;  // 0 = no bound
  absl::Mutex fetch_mu_;     // one download at a time: a digest is fetched once
  std::multiset<std::string> in_use_ ABSL_GUARDED_BY(fetch_mu_);  // digests a Pack is placing
};

}  // namespace dockyard
