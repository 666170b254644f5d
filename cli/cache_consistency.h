// Checks a run's promise that each stage started from exactly the cache snapshot
// the stage before it left: for every stage that mounts a cache, the snapshot it
// consumed must be the one produced by the last-finished stage it needs (directly
// or not) that wrote that cache. A stage with no such producer starts from the
// key's latest snapshot or an empty cache, which is fine.
#pragma once

#include <string>
#include <vector>

#include "dockyard/v1/run.pb.h"

namespace dockyard {

// Whether any stage of `run` reported cache digests.
bool UsesCaches(const v1::Run& run);
// One sentence per broken link ("stage build consumed ... but test produced ...");
// empty when consistent.
std::vector<std::string> CacheInconsistencies(const v1::Run& run);

}  // namespace dockyard
