// Keeps the controller's cache store within --cache_max_bytes: evicts the least
// recently used keys (the scheduler forgets them; new runs of those keys start
// empty), then removes every stored part no live snapshot reaches any more (mark
// from the roots the scheduler still needs, sweep the rest). Parts younger than a
// grace period stay: an agent may be publishing a snapshot nothing names yet.
// Blocking (disk): runs on the controller's housekeeping thread, off the core's lock.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/blob_store.h"

namespace dockyard {

struct CollectedCaches {
  int64_t removed = 0;        // parts
  int64_t removed_bytes = 0;
  int64_t kept = 0;
  int64_t kept_bytes = 0;
};

// Removes the parts of `store` that no snapshot in `live_roots` reaches and that
// were stored before `now - grace`.
absl::StatusOr<CollectedCaches> CollectCacheParts(BlobStore& store, const std::set<std::string>& live_roots,
                                                  absl::Time now, absl::Duration grace);

}  // namespace dockyard
