// Where the controller's gRPC services meet: owns the scheduler and the stores,
// serialises every change of run/stage/agent state under one mutex, and pushes the
// resulting orders to connected agents once the state persister has saved what they
// depend on (decide, then persist, then send). Thread-safe; called from gRPC
// reactions (the calls marked blocking only from worker threads) and from its own
// housekeeping thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/worker_pool.h"
#include "controller/blob_store.h"
#include "controller/certificate_authority.h"
#include "controller/identity_store.h"
#include "controller/log_store.h"
#include "controller/run_watchers.h"
#include "controller/scheduler.h"
#include "controller/secret_store.h"
#include "controller/retention.h"
#include "controller/state_persister.h"
#include "controller/state_store.h"
#include "dockyard/v1/agent.pb.h"
#include "dockyard/v1/run.pb.h"

namespace dockyard {

// The controller's end of one agent's session stream.
class AgentChannel {
 public:
  virtual ~AgentChannel() = default;
  // Queues `message` for the agent. Never blocks and never calls back into the core
  // (it is called with the core's mutex held). Dropped once the session is ending.
  virtual void Send(v1::ControllerMessage message) = 0;
  // Ends the session with `why` (revocation, a newer session). Never blocks and
  // never calls back into the core; DetachAgent follows later as usual.
  virtual void Close(const absl::Status& why) = 0;
};

struct ControllerOptions {
  std::string data_dir;
  // Where runs, agents and identity records live, and where blobs do (data_dir is
  // filled in).
  StateStoreOptions state;
  BlobStoreOptions blobs;
  // With a shared database: waits for the leader lease before loading anything (a
  // standby); `holder` is made unique to this process when empty.
  StateStore::Leadership leadership;
  // TLS, enrolled agents and client tokens (false: --insecure, plain text, no checks).
  bool secure = true;
  // Host names / addresses clients dial, added to the server certificate.
  std::vector<std::string> advertise_names;
  // The most stages a submitted pipeline may have (a client need not be our CLI).
  int max_stages = 1000;
  SchedulerOptions scheduler;
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // How often leases are checked and queued stages re-examined.
  absl::Duration tick = absl::Seconds(1);
  // The most bytes of keyed-cache snapshots kept (least recently used go first),
  // and how young an unreferenced cache part must be to stay (it may be mid-publish).
  int64_t cache_max_bytes = int64_t{10} << 30;
  absl::Duration cache_part_grace = absl::Minutes(10);
  // Retention: finished runs kept (age, count), how old an unreferenced blob must be
  // before it goes (it may belong to a run being submitted), how often it runs.
  RetentionPolicy retention;
  absl::Duration blob_grace = absl::Hours(1);
  absl::Duration gc_interval = absl::Hours(1);
  // Wraps each save of the state store (tests give it a slow disk); empty: as is.
  std::function<StatePersister::Save(StatePersister::Save)> wrap_save;
};

class ControllerCore {
 public:
  static absl::StatusOr<std::unique_ptr<ControllerCore>> Create(ControllerOptions options);
  ~ControllerCore();

  // --- agents ---
  // Registers the agent behind `channel`, sends it Welcome and whatever the
  // scheduler decides. `caller` is who the connection proved to be: an enrolled
  // agent may register only under its own name. A second session of an agent whose
  // session is alive (a heartbeat within the last two intervals) is refused; a
  // silent one is replaced.
  absl::Status AttachAgent(AgentChannel* channel, const v1::RegisterAgent& registration, const Caller& caller);
  // The session ended; `channel` is not used again after this returns.
  void DetachAgent(AgentChannel* channel, const std::string& agent);
  void OnHeartbeat(const std::string& agent, const v1::Heartbeat& heartbeat);
  // Applies the status; a final one is answered with StageSettled either way.
  void OnStageStatus(const std::string& agent, const v1::StageStatus& status);
  // Appends on the log writer thread (in arrival order), which then acknowledges.
  void OnLogBatch(const std::string& agent, v1::LogBatch batch);
  // OK when `agent` may upload artifacts for `ref`: the attempt runs, and (with
  // security on, `agent` not empty) `agent` holds it.
  absl::Status CheckUploader(const std::string& agent, const v1::StageRef& ref);
  // OK when `agent` (empty: security off) holds a live attempt of a run with that source.
  absl::Status CheckSourceFetch(const std::string& agent, const std::string& digest);
  // OK when `agent` (empty: security off) holds a live attempt of `run_id` and the
  // run published an artifact `sha256` (a stage's inputs).
  absl::Status CheckArtifactFetch(const std::string& agent, const std::string& run_id, const std::string& sha256);
  // Revokes the agent's identity, closes its session now and re-queues its
  // stages. Blocking (disk). Returns how many running attempts it lost.
  absl::StatusOr<int> RevokeAgent(const std::string& agent);

  // --- retention (controller_retention.cc) ---
  struct GarbageReport {
    std::vector<std::string> runs;  // removed, oldest id first
    int64_t blobs = 0;
    int64_t blob_bytes = 0;
  };
  // Removes finished runs past options().retention with their logs and artifact
  // records, then blobs nothing references that are older than blob_grace. A run in
  // progress is never touched. With `dry_run` nothing changes; the report says what
  // would go. Blocking (state store, log and blob I/O): never from a reaction.
  absl::StatusOr<GarbageReport> CollectGarbage(bool dry_run);
  // Blocking: returns once the artifacts are saved in the index (in one save).
  absl::Status RecordArtifacts(const std::vector<v1::Artifact>& artifacts);

  // --- clients ---
  struct Submitted {
    std::string run_id;
    bool existing = false;  // the idempotency key named an earlier run
  };
  // `owner` names who submitted it (a token name; "" with security off). A
  // non-empty `idempotency_key` this owner used before returns that run. Blocking:
  // returns once the run is saved (so are CancelRun and DrainAgent's changes).
  absl::StatusOr<Submitted> SubmitRun(v1::Pipeline pipeline, const std::string& owner,
                                      const std::string& idempotency_key = "");
  absl::StatusOr<v1::Run> GetRun(const std::string& run_id);
  int64_t RunVersion(const std::string& run_id);
  // Calls `wake` once the run's version is other than `version`: at once (returning 0)
  // when it already is, else once the change is saved, on the persister's thread (post
  // real work elsewhere). Returns an id for UnwatchRun.
  uint64_t WatchRun(const std::string& run_id, int64_t version, std::function<void()> wake);
  // True when the watch was taken back before it fired.
  bool UnwatchRun(uint64_t id);
  // Any run for role admin (or security off); otherwise only the caller's own.
  absl::Status CancelRun(const std::string& run_id, const Caller& caller);
  std::vector<v1::AgentInfo> Agents();
  std::vector<v1::CacheInfo> Caches();
  int64_t cache_max_bytes() const { return options_.cache_max_bytes; }
  absl::Status DrainAgent(const std::string& agent, bool drain);
  // The run's artifacts (those `which` takes, when given: a download looks one up
  // among thousands without copying them all).
  using ArtifactFilter = std::function<bool(const v1::Artifact&)>;
  std::vector<v1::Artifact> Artifacts(const std::string& run_id, const ArtifactFilter& which = nullptr);
  // The attempt a log read means: `attempt` 0 is the current one. NOT_FOUND for an
  // unknown run or stage; attempt 0 in the result when the stage never started.
  absl::StatusOr<v1::StageRef> ResolveAttempt(const std::string& run_id, const std::string& stage,
                                              int attempt);

  LogStore& logs() { return logs_; }
  BlobStore& blobs() { return *blobs_; }
  // Cache snapshot files and directory listings (apart from artifacts: they are
  // evicted by their own rules).
  BlobStore& cache_blobs() { return *cache_blobs_; }
  // Null with security off.
  IdentityStore* identity() { return identity_.get(); }
  SecretStore& secrets() { return *secrets_; }
  const CertificateAuthority* ca() const { return ca_.get(); }

 private:
  ControllerCore(ControllerOptions options, std::unique_ptr<BlobStore> blobs, std::unique_ptr<StateStore> state,
                 std::unique_ptr<LogBackend> log_backend);
  // Takes over what a previous process saved (before any agent or client is served).
  void Restore(StateStore::Contents contents) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands every run and agent changed since the last call, the artifacts recorded
  // and the messages queued by SendTo to the persister, which saves, then sends.
  // Call after each change: no agent is told what a restart would forget.
  void Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Apply(SchedulerEffects effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `message` for the agent's current session, sent once the changes before
  // it are saved (by the next Persist). Dropped when the agent has no session.
  void SendTo(const std::string& agent, v1::ControllerMessage message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends at once what promises no saved state (heartbeat and log acks, rejects).
  void SendNow(const std::string& agent, v1::ControllerMessage message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The persister's way out: each message to its session, if that is still open.
  void Deliver(std::vector<Delivery> deliveries) ABSL_LOCKS_EXCLUDED(mu_);
  void Housekeeping();
  // Evicts keyed caches beyond the limit and removes the parts nothing reaches.
  // Called with mu_ held; releases it for the disk work.
  void CollectCaches(bool evicted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ControllerOptions options_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<BlobStore> cache_blobs_;
  const std::unique_ptr<StateStore> state_;
  LogStore logs_;  // after the stores: its backend may archive into blobs_
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<IdentityStore> identity_;
  std::unique_ptr<SecretStore> secrets_;

  absl::Mutex mu_;
  Scheduler scheduler_ ABSL_GUARDED_BY(mu_);
  struct Session {
    AgentChannel* channel;
    uint64_t id;
  };
  std::map<std::string, Session> channels_ ABSL_GUARDED_BY(mu_);
  uint64_t last_session_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::vector<v1::Artifact>> artifacts_ ABSL_GUARDED_BY(mu_);
  // For the next Persist: artifacts to save, messages waiting for the save.
  std::vector<v1::Artifact> unsaved_artifacts_ ABSL_GUARDED_BY(mu_);
  std::vector<Delivery> outbox_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<StatePersister> persister_;
  RunWatchers run_watchers_;
  // The one thread that appends to and closes logs, so reactions never wait for
  // them and an attempt's log closes only after the chunks that came before.
  std::unique_ptr<WorkerPool> log_writer_ = std::make_unique<WorkerPool>(1);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_collected_ ABSL_GUARDED_BY(mu_);
  absl::Time last_garbage_collection_ ABSL_GUARDED_BY(mu_);
  absl::Mutex gc_mu_;  // one garbage collection at a time
  std::thread housekeeping_;
};

}  // namespace dockyard
