// A stage's caches on this agent. Every run has its own Docker volume per cache,
// which must hold exactly the snapshot the controller says the attempt starts
// from: reused when it already does, otherwise made afresh and restored from the
// snapshot (parts this host lacks come from the controller, each checked against
// its digest). When a stage succeeds, its caches are snapshotted and published.
// A volume a failed attempt wrote to is never trusted again. Thread-safe; every
// call blocks (Docker, disk, gRPC).
#pragma once

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/cache_content_store.h"
#include "agent/cache_transfer.h"
#include "agent/docker_client.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class CacheVolumes {
 public:
  // `docker` and `stub` must outlive it; its files live below `work_dir`. Its
  // content store keeps at most `max_bytes` (0 = no limit; --cache_max_bytes).
  CacheVolumes(DockerClient* docker, v1::AgentService::Stub* stub, const std::string& work_dir,
               int64_t max_bytes = 0);

  // Makes `volume` hold snapshot `digest` ("" = an empty cache), restoring it with
  // a helper container of `image` (never started) when needed. Returns what it did,
  // for the stage log. DATA_LOSS naming the digest of a part that does not match.
  absl::StatusOr<std::string> Prepare(const std::string& volume, const std::string& digest, const std::string& image,
                                      const std::map<std::string, std::string>& labels);

  // Snapshots what `container` has at `path` (where `volume` is mounted) and
  // publishes it, unless it is still `consumed` (which the controller has).
  // `note` says for the log what it took and sent.
  absl::StatusOr<v1::CacheDigests> Take(const std::string& container, const std::string& path,
                                        const std::string& volume, const std::string& consumed,
                                        const std::string& scratch, std::string* note);

  // `volume` may hold anything now (an attempt that failed wrote to it).
  void Forget(const std::string& volume);

 private:
  void Record(const std::string& volume, const std::string& digest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Trims the content store, between snapshots (never while one reads it).
  void Trim();

  DockerClient* docker_;
  const int64_t max_bytes_;
  // Shared by takes and restores, exclusive for trimming.
  absl::Mutex store_mu_;
  CacheContentStore store_;
  CacheTransfer transfer_;
  const std::string records_dir_;  // <volume> -> the digest it holds
  const std::string scratch_dir_;

  absl::Mutex mu_;
  std::map<std::string, std::string> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dockyard
