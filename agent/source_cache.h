// Source trees on the agent: fetched from the controller once per digest, verified,
// kept under <dir>/<digest>.tar for every later stage that needs the same tree.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class SourceCache {
 public:
  // `stub` must outlive the cache.
  SourceCache(std::string dir, v1::AgentService::StubInterface* stub);

  // Path of the verified tar for `digest`, fetching it first if needed. Blocks;
  // call from worker threads. Thread-safe (concurrent callers fetch once).
  absl::StatusOr<std::string> Get(const std::string& digest);

 private:
  absl::Status Fetch(const std::string& digest, const std::string& path);

  const std::string dir_;
  v1::AgentService::StubInterface* stub_;
  absl::Mutex fetch_mu_;  // one fetch at a time: simple, and the same tree is fetched once
};

}  // namespace dockyard
