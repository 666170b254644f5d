#include "agent/cache_volumes.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/snapshot_tree.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

// Where the helper container mounts a volume to restore it: a path no image uses,
// so Docker copies nothing of the image into the fresh volume.
constexpr char kRestorePath[] = "/.dockyard-cache-restore";


}  // namespace

CacheVolumes::CacheVolumes(DockerClient* docker, v1::AgentService::Stub* stub, const std::string& work_dir,
                           int64_t max_bytes)
    : docker_(docker),
      max_bytes_(max_bytes),
      store_(work_dir + "/cas"),
      transfer_(stub, &store_),
      records_dir_(work_dir + "/volumes"),
      scratch_dir_(work_dir + "/scratch") {
  std::error_code ec;
  fs::create_directories(records_dir_, ec);
  fs::create_directories(scratch_dir_, ec);
  absl::MutexLock lock(&mu_);
  for (const auto& entry : fs::directory_iterator(records_dir_, ec)) {
    auto digest = ReadFileToString(entry.path().string());
    if (digest.ok()) held_[entry.path().filename().string()] = *digest;
  }
}

void CacheVolumes::Record(const std::string& volume, const std::string& digest) {
  held_[volume] = digest;
  (void)WriteFileAtomically(records_dir_ + "/" + volume, digest);
}

void CacheVolumes::Forget(const std::string& volume) {
  absl::MutexLock lock(&mu_);
  held_.erase(volume);
  std::error_code ec;
  fs::remove(records_dir_ + "/" + volume, ec);
}

absl::StatusOr<std::string> CacheVolumes::Prepare(const std::string& volume, const std::string& digest,
                                                  const std::string& image,
                                                  const std::map<std::string, std::string>& labels) {
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(volume);
    // Unless an operator pruned it meanwhile.
    if (it != held_.end() && it->second == digest && docker_->VolumeExists(volume).value_or(false)) {
      return std::string("already on this host");
    }
  }
  // Whatever the volume held is not what this attempt starts from: a fresh one.
  RETURN_IF_ERROR(docker_->RemoveVolume(volume));
  Forget(volume);
  RETURN_IF_ERROR(docker_->CreateVolume(volume, labels));
  std::string how = "a fresh volume";
  if (!digest.empty()) {
    absl::ReaderMutexLock store_lock(&store_mu_);
    ASSIGN_OR_RETURN(TransferCount fetched, transfer_.Fetch(digest));
    const std::string tar = absl::StrCat(scratch_dir_, "/restore-", volume, ".tar");
    RETURN_IF_ERROR(store_.WriteRestoreTar(digest, tar));
    ContainerSpec helper;
    helper.image = image;
    helper.cmd = {"true"};
    helper.labels = labels;
    helper.binds = {absl::StrCat(volume, ":", kRestorePath)};
    helper.network_mode = "none";
    auto id = docker_->CreateContainer(helper);
    absl::Status put = id.ok() ? docker_->PutArchive(*id, kRestorePath, tar) : id.status();
    if (id.ok()) (void)docker_->RemoveContainer(*id);
    std::error_code ec;
    fs::remove(tar, ec);
    RETURN_IF_ERROR(put);
    how = fetched.blobs > 0 ? absl::StrCat("restored; ", fetched.blobs, " parts (", FormatBytes(fetched.bytes),
                                           ") fetched from the controller")
                            : "restored from this host's copy";
  }
  absl::MutexLock lock(&mu_);
  Record(volume, digest);
  return how;
}

void CacheVolumes::Trim() {
  if (max_bytes_ <= 0) return;
  absl::WriterMutexLock store_lock(&store_mu_);
  if (const int64_t removed = store_.Trim(max_bytes_); removed > 0) {
    Logger("agent")->info("cache content store: removed {} least recently used (--cache_max_bytes={})",
                          FormatBytes(removed), max_bytes_);
  }
}

absl::StatusOr<v1::CacheDigests> CacheVolumes::Take(const std::string& container, const std::string& path,
                                                    const std::string& volume, const std::string& consumed,
                                                    const std::string& scratch, std::string* note) {
  const std::string tar = scratch + ".cache.tar";
  std::vector<std::string> skipped;
  absl::StatusOr<SnapshotTree> tree = absl::UnknownError("not taken");
  absl::StatusOr<TransferCount> sent = absl::UnknownError("not sent");
  if (absl::Status got = docker_->GetArchive(container, path, tar); !got.ok()) {
    tree = got;
  } else {
    absl::ReaderMutexLock store_lock(&store_mu_);
    tree = store_.Take(tar, &skipped);
    // Unchanged: the controller has every part already (it is what this attempt started from).
    if (tree.ok()) sent = tree->root == consumed ? TransferCount{} : transfer_.Publish(*tree);
  }
  std::error_code ec;
  fs::remove(tar, ec);
  if (!tree.ok()) return tree.status();
  if (!sent.ok()) return sent.status();
  Trim();
  {
    absl::MutexLock lock(&mu_);
    Record(volume, tree->root);
  }
  v1::CacheDigests digests;
  digests.set_produced(tree->root);
  digests.set_bytes(tree->file_bytes);
  digests.set_files(tree->file_count);
  *note = absl::StrCat("snapshot ", tree->root, " (", tree->file_count, " files, ", FormatBytes(tree->file_bytes),
                       "; ", sent->blobs, " new parts, ", FormatBytes(sent->bytes), " sent to the controller)");
  if (!skipped.empty()) {
    absl::StrAppend(note, "; left out (links leading out of the cache, devices, fifos): ",
                    absl::StrJoin(skipped, ", "));
  }
  return digests;
}

}  // namespace dockyard
