#include "controller/cache_collector.h"

#include "absl/strings/str_cat.h"
#include "common/snapshot_tree.h"

namespace dockyard {

absl::StatusOr<CollectedCaches> CollectCacheParts(BlobStore& store, const std::set<std::string>& live_roots,
                                                  absl::Time now, absl::Duration grace) {
  std::set<std::string> reached;
  auto directory = [&](const std::string& digest) -> absl::StatusOr<std::string> {
    reached.insert(digest);
    absl::StatusOr<int64_t> size = store.Size(digest);
    if (!size.ok()) return size.status();
    return store.Read(digest, 0, *size);
  };
  for (const std::string& root : live_roots) {
    absl::Status walked = WalkSnapshot(root, directory, [&](const std::string&, const v1::SnapshotEntry& e) {
      if (e.kind() == v1::SnapshotEntry::FILE) reached.insert(e.digest());
    });
    // A root whose parts are gone (or damaged) keeps nothing alive beyond what was
    // reached; its stage fails by name when it is restored.
    (void)walked;
  }
  CollectedCaches collected;
  for (const BlobStore::Listed& part : store.List()) {
    if (reached.count(part.sha256) != 0 || part.stored > now - grace) {
      ++collected.kept;
      collected.kept_bytes += part.size;
      continue;
    }
    if (absl::Status st = store.Remove(part.sha256); !st.ok()) return st;
    ++collected.removed;
    collected.removed_bytes += part.size;
  }
  return collected;
}

}  // namespace dockyard
