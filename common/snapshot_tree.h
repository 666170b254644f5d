// A cache's content as a tree of content-addressed parts, after REAPI's Directory
// and Tree: every file named by the sha256 of its bytes, every directory by the
// sha256 of its sorted, deterministically serialized listing (v1.SnapshotDirectory),
// so the root directory's digest names the whole snapshot. Identical files are
// stored and moved once, and two snapshots that differ by one file share everything
// else. Owners, permission bits, symlinks (inside the tree only) and empty
// directories are part of a snapshot; modification times are not. Shared by the
// agent (takes and restores snapshots) and the controller (stores and serves them).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dockyard/v1/blob.pb.h"

namespace dockyard {

struct SnapshotTree {
  std::string root;                                  // digest of the root directory
  std::map<std::string, std::string> directories;    // digest -> serialized SnapshotDirectory
  std::map<std::string, int64_t> files;              // digest -> size
  int64_t file_bytes = 0;                            // sum over file entries (duplicates counted)
  int64_t file_count = 0;
};

// Builds a tree from entries given in any order. Paths are relative, '/'-separated,
// without "." or ".." components; parents are created as needed (0755, 0:0) unless
// given themselves.
class SnapshotBuilder {
 public:
  SnapshotBuilder();
  ~SnapshotBuilder();
  SnapshotBuilder(const SnapshotBuilder&) = delete;
  SnapshotBuilder& operator=(const SnapshotBuilder&) = delete;

  // INVALID_ARGUMENT for a bad path or one given twice with different kinds.
  absl::Status AddFile(const std::string& path, const std::string& digest, int64_t size, uint32_t mode,
                       uint32_t uid, uint32_t gid);
  absl::Status AddDirectory(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid);
  // INVALID_ARGUMENT for a target that is absolute or leads out of the tree.
  absl::Status AddSymlink(const std::string& path, const std::string& target, uint32_t uid, uint32_t gid);
  SnapshotTree Finish();

 private:
  struct Node;
  absl::StatusOr<Node*> Parent(const std::string& path, std::string* name);
  // A new file or symlink entry at `path`; INVALID_ARGUMENT when it exists.
  absl::StatusOr<v1::SnapshotEntry*> NewLeaf(const std::string& path, v1::SnapshotEntry::Kind kind, uint32_t uid,
                                             uint32_t gid);
  std::string Serialize(const Node& node, SnapshotTree& tree) const;

  std::unique_ptr<Node> root_;
};

// Every file and directory digest below the directory `root`, reading directories
// through `directory` (serialized form by digest). DATA_LOSS for a directory that
// is missing, does not parse or does not match its digest.
absl::Status WalkSnapshot(const std::string& root,
                          const std::function<absl::StatusOr<std::string>(const std::string&)>& directory,
                          const std::function<void(const std::string& path, const v1::SnapshotEntry&)>& visit);

// The first 12 hex digits, for tables; messages and --long show the whole digest.
std::string ShortDigest(const std::string& digest);

}  // namespace dockyard
