// A stage's `inputs`: the artifacts of stages it needs, fetched from the controller
// by digest (once per agent, into <dir>/<sha256>), each checked against its digest,
// and packed into a tar that puts every file under its directory in the container.
// Where the producer ran does not matter. Thread-safe; blocking (gRPC, disk).
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class InputArtifacts {
 public:
  // `stub` must outlive it.
  InputArtifacts(v1::AgentService::Stub* stub, std::string dir);

  // Writes the tar placing `assignment`'s input artifacts (entries relative to "/")
  // to `out_tar`. Returns a line for the stage log. DATA_LOSS naming an artifact
  // whose bytes do not match its digest.
  absl::StatusOr<std::string> Pack(const v1::StageAssignment& assignment, const std::string& out_tar);

 private:
  absl::Status Fetch(const std::string& run_id, const v1::InputArtifact& input);

  v1::AgentService::Stub* stub_;
  const std::string dir_;
  absl::Mutex fetch_mu_;  // one download at a time: a digest is fetched once
};

}  // namespace dockyard
