#include "common/snapshot_tree.h"

#include <algorithm>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace dockyard {

struct SnapshotBuilder::Node {
  v1::SnapshotEntry entry;                               // name, kind and attributes
  std::map<std::string, std::unique_ptr<Node>> children;  // by name: sorted
};

namespace {

bool ValidComponent(absl::string_view c) { return !c.empty() && c != "." && c != ".."; }

std::string SerializeDeterministically(const v1::SnapshotDirectory& dir) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    dir.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace

SnapshotBuilder::SnapshotBuilder() : root_(std::make_unique<Node>()) {
  root_->entry.set_kind(v1::SnapshotEntry::DIRECTORY);
  root_->entry.set_mode(0755);
}

SnapshotBuilder::~SnapshotBuilder() = default;

absl::StatusOr<SnapshotBuilder::Node*> SnapshotBuilder::Parent(const std::string& path, std::string* name) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.empty()) return absl::InvalidArgumentError(absl::StrCat("empty path \"", path, "\""));
  Node* node = root_.get();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!ValidComponent(parts[i])) return absl::InvalidArgumentError(absl::StrCat("bad path \"", path, "\""));
    if (i + 1 == parts.size()) break;
    std::unique_ptr<Node>& child = node->children[parts[i]];
    if (child == nullptr) {
      child = std::make_unique<Node>();
      child->entry.set_name(parts[i]);
      child->entry.set_kind(v1::SnapshotEntry::DIRECTORY);
      child->entry.set_mode(0755);
    } else if (child->entry.kind() != v1::SnapshotEntry::DIRECTORY) {
      return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" lies below a file"));
    }
    node = child.get();
  }
  *name = parts.back();
  return node;
}

absl::StatusOr<v1::SnapshotEntry*> SnapshotBuilder::NewLeaf(const std::string& path, v1::SnapshotEntry::Kind kind,
                                                           uint32_t uid, uint32_t gid) {
  std::string name;
  absl::StatusOr<Node*> parent = Parent(path, &name);
  if (!parent.ok()) return parent.status();
  std::unique_ptr<Node>& node = (*parent)->children[name];
  if (node != nullptr) return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" appears twice"));
  node = std::make_unique<Node>();
  node->entry.set_name(name);
  node->entry.set_kind(kind);
  node->entry.set_uid(uid);
  node->entry.set_gid(gid);
  return &node->entry;
}

absl::Status SnapshotBuilder::AddFile(const std::string& path, const std::string& digest, int64_t size,
                                      uint32_t mode, uint32_t uid, uint32_t gid) {
  absl::StatusOr<v1::SnapshotEntry*> e = NewLeaf(path, v1::SnapshotEntry::FILE, uid, gid);
  if (!e.ok()) return e.status();
  (*e)->set_digest(digest);
  (*e)->set_size(size);
  (*e)->set_mode(mode & 07777);
  return absl::OkStatus();
}

absl::Status SnapshotBuilder::AddDirectory(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  std::string name;
  absl::StatusOr<Node*> parent = Parent(path, &name);
  if (!parent.ok()) return parent.status();
  std::unique_ptr<Node>& node = (*parent)->children[name];
  if (node == nullptr) {
    node = std::make_unique<Node>();
    node->entry.set_name(name);
    node->entry.set_kind(v1::SnapshotEntry::DIRECTORY);
  } else if (node->entry.kind() != v1::SnapshotEntry::DIRECTORY) {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" appears twice"));
  }
  node->entry.set_mode(mode & 07777);
  node->entry.set_uid(uid);
  node->entry.set_gid(gid);
  return absl::OkStatus();
}

absl::Status SnapshotBuilder::AddSymlink(const std::string& path, const std::string& target, uint32_t uid,
                                         uint32_t gid) {
  // The link must stay inside the tree from where it sits.
  int depth = static_cast<int>(std::count(path.begin(), path.end(), '/'));
  if (target.empty() || target[0] == '/') {
    return absl::InvalidArgumentError(absl::StrCat("symlink \"", path, "\" points outside the cache (", target, ")"));
  }
  for (absl::string_view part : absl::StrSplit(target, '/', absl::SkipEmpty())) {
    depth += part == ".." ? -1 : (part == "." ? 0 : 1);
    if (depth < 0) {
      return absl::InvalidArgumentError(absl::StrCat("symlink \"", path, "\" points outside the cache (", target, ")"));
    }
  }
  absl::StatusOr<v1::SnapshotEntry*> e = NewLeaf(path, v1::SnapshotEntry::SYMLINK, uid, gid);
  if (!e.ok()) return e.status();
  (*e)->set_target(target);
  return absl::OkStatus();
}

std::string SnapshotBuilder::Serialize(const Node& node, SnapshotTree& tree) const {
  v1::SnapshotDirectory dir;
  for (const auto& [name, child] : node.children) {
    v1::SnapshotEntry* e = dir.add_entries();
    *e = child->entry;
    if (e->kind() == v1::SnapshotEntry::DIRECTORY) {
      e->set_digest(Serialize(*child, tree));
    } else if (e->kind() == v1::SnapshotEntry::FILE) {
      tree.files[e->digest()] = e->size();
      tree.file_bytes += e->size();
      ++tree.file_count;
    }
  }
  std::string bytes = SerializeDeterministically(dir);
  std::string digest = Sha256Hex(bytes);
  tree.directories[digest] = std::move(bytes);
  return digest;
}

SnapshotTree SnapshotBuilder::Finish() {
  SnapshotTree tree;
  tree.root = Serialize(*root_, tree);
  return tree;
}

absl::Status WalkSnapshot(const std::string& root,
                          const std::function<absl::StatusOr<std::string>(const std::string&)>& directory,
                          const std::function<void(const std::string& path, const v1::SnapshotEntry&)>& visit) {
  std::function<absl::Status(const std::string&, const std::string&)> walk = [&](const std::string& digest,
                                                                                 const std::string& prefix) {
    absl::StatusOr<std::string> bytes = directory(digest);
    if (!bytes.ok()) return bytes.status();
    v1::SnapshotDirectory dir;
    if (Sha256Hex(*bytes) != digest || !dir.ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat("snapshot directory ", digest, " does not match its digest"));
    }
    for (const v1::SnapshotEntry& e : dir.entries()) {
      if (!ValidComponent(e.name()) || e.name().find('/') != std::string::npos) {
        return absl::DataLossError(absl::StrCat("snapshot directory ", digest, " holds a bad name"));
      }
      const std::string path = prefix.empty() ? e.name() : absl::StrCat(prefix, "/", e.name());
      visit(path, e);
      if (e.kind() == v1::SnapshotEntry::DIRECTORY) {
        if (absl::Status st = walk(e.digest(), path); !st.ok()) return st;
      }
    }
    return absl::OkStatus();
  };
  return walk(root, "");
}

std::string ShortDigest(const std::string& digest) { return digest.substr(0, 12); }

}  // namespace dockyard
