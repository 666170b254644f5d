// Moves cache snapshots between the agent's content store and the controller's,
// by digest: Publish sends only what the controller lacks; Fetch brings whatever
// this agent lacks, every part checked against its digest as it arrives. Blocking
// (gRPC with retries): call from stage threads only.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/cache_content_store.h"
#include "common/snapshot_tree.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

struct TransferCount {
  int64_t blobs = 0;  // files and directory listings moved
  int64_t bytes = 0;
};

class CacheTransfer {
 public:
  // `stub` and `store` must outlive it.
  CacheTransfer(v1::AgentService::Stub* stub, CacheContentStore* store) : stub_(stub), store_(store) {}

  // Sends the parts of `tree` the controller does not hold yet.
  absl::StatusOr<TransferCount> Publish(const SnapshotTree& tree);
  // Brings every part of snapshot `root` this agent does not hold. DATA_LOSS naming
  // the digest of a part that does not match it (nothing of it is kept).
  absl::StatusOr<TransferCount> Fetch(const std::string& root);

 private:
  // Returns the bytes sent.
  absl::StatusOr<int64_t> Upload(const std::string& digest);
  absl::StatusOr<int64_t> Download(const std::string& digest);

  v1::AgentService::Stub* stub_;
  CacheContentStore* store_;
  // One download at a time: two stages wanting one digest must not share a temp file.
  absl::Mutex download_mu_;
};

}  // namespace dockyard
