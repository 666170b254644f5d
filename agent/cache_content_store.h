// The agent's side of cache snapshots: reads Docker's archive tar of a cache mount
// into a snapshot tree (common/snapshot_tree.h), keeping every file and directory
// listing in the agent's content store (<dir>/<digest>, written atomically, so a
// host keeps a file once however many snapshots name it), and writes the tar that
// restores a snapshot into a fresh volume from that store, checking every digest
// on the way. Thread-safe: entries are only ever added, each by an atomic rename.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/snapshot_tree.h"

namespace dockyard {

class CacheContentStore {
 public:
  explicit CacheContentStore(std::string dir);

  // Docker names the entries after the last component of the archived path
  // ("build/..."): that component is the snapshot's root. Devices, fifos, sockets
  // and symlinks leading out of the tree are left out, each named in `skipped`.
  absl::StatusOr<SnapshotTree> Take(const std::string& tar_path, std::vector<std::string>* skipped);

  bool Has(const std::string& digest) const;
  std::string PathOf(const std::string& digest) const;
  // Stores `bytes` (a directory listing, or a file fetched whole) under `digest`.
  // DATA_LOSS, naming the digest, when they do not match it.
  absl::Status Put(const std::string& digest, const std::string& bytes);
  // Moves the file at `path` into the store under `digest` after checking it.
  absl::Status Adopt(const std::string& digest, const std::string& path);
  // The listing of directory `digest`. NOT_FOUND when the store lacks it.
  absl::StatusOr<std::string> Directory(const std::string& digest) const;

  // Writes a tar of snapshot `root` with entries relative to the mount path, owners
  // and modes as recorded. DATA_LOSS naming the digest of any part that is missing
  // or does not match its digest; nothing is left at `out_tar` then.
  absl::Status WriteRestoreTar(const std::string& root, const std::string& out_tar) const;

  // Removes the least recently used parts until the store holds at most `max_bytes`
  // (0 = no limit). Returns the bytes removed. Parts are marked used when a snapshot
  // takes or restores them.
  int64_t Trim(int64_t max_bytes);

 private:
  const std::string dir_;
};

}  // namespace dockyard
