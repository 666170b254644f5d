#include "controller/controller_core.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/names.h"
#include "common/stage_graph.h"
#include "common/status_macros.h"
#include "controller/cache_collector.h"
#include "controller/file_blob_store.h"

namespace dockyard {
namespace {

absl::Status ValidateSubmitted(const v1::Pipeline& pipeline) {
  if (pipeline.stages_size() == 0) return absl::InvalidArgumentError("pipeline has no stages");
  for (const v1::Stage& stage : pipeline.stages()) {
    if (!IsSafeName(stage.name())) {
      return absl::InvalidArgumentError(absl::StrCat("bad stage name \"", stage.name(), "\""));
    }
    if (stage.image().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stage ", stage.name(), " has no image"));
    }
    for (const v1::CacheMount& cache : stage.caches()) {
      if (!IsSafeName(cache.name())) {
        return absl::InvalidArgumentError(absl::StrCat("bad cache name \"", cache.name(), "\""));
      }
    }
  }
  for (const v1::CacheSpec& cache : pipeline.caches()) {
    if (!IsSafeName(cache.name()) || (!cache.key().empty() && !IsSafeName(cache.key()))) {
      return absl::InvalidArgumentError(absl::StrCat("bad cache \"", cache.name(), "\" key \"", cache.key(), "\""));
    }
  }
  return ValidateStageGraph(pipeline);
}

const char* StateWord(v1::StageState state) {
  switch (state) {
    case v1::STAGE_SUCCEEDED: return "succeeded";
    case v1::STAGE_FAILED: return "failed";
    case v1::STAGE_CANCELLED: return "cancelled";
    case v1::STAGE_TIMED_OUT: return "timed out";
    case v1::STAGE_LOST: return "lost";
    default: return "ended";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControllerCore>> ControllerCore::Create(ControllerOptions options) {
  BlobStoreOptions blob_options = options.blobs;
  blob_options.data_dir = options.data_dir;
  ASSIGN_OR_RETURN(std::unique_ptr<BlobStore> blobs, OpenBlobStore(blob_options, "blobs"));
  StateStoreOptions state_options = options.state;
  state_options.data_dir = options.data_dir;
  ASSIGN_OR_RETURN(std::unique_ptr<StateStore> state, OpenStateStore(state_options));
  StateStore::Leadership leadership = options.leadership;
  if (leadership.holder.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    leadership.holder = absl::StrCat(host, "/", ::getpid(), "/", absl::ToUnixNanos(absl::Now()));
  }
  RETURN_IF_ERROR(state->Lead(leadership));  // a standby waits here, before it loads anything
  ASSIGN_OR_RETURN(StateStore::Contents contents, state->Load());
  ASSIGN_OR_RETURN(std::unique_ptr<BlobStore> cache_blobs, OpenBlobStore(blob_options, "caches"));
  std::unique_ptr<LogBackend> log_backend = state->NewLogBackend(options.data_dir + "/logs", blobs.get());
  std::unique_ptr<ControllerCore> core(
      new ControllerCore(std::move(options), std::move(blobs), std::move(state), std::move(log_backend)));
  core->cache_blobs_ = std::move(cache_blobs);
  if (core->options_.secure) {
    ASSIGN_OR_RETURN(core->ca_, CertificateAuthority::LoadOrCreate(core->options_.data_dir + "/tls",
                                                                   core->options_.advertise_names));
    core->identity_ = std::make_unique<IdentityStore>(core->state_.get(), core->ca_.get(), contents);
    RETURN_IF_ERROR(core->identity_->EnsureAdminToken(core->options_.data_dir + "/admin.token"));
  }
  ASSIGN_OR_RETURN(core->secrets_, SecretStore::Open(core->options_.data_dir + "/secrets.key", core->state_.get(),
                                                    contents.secrets));
  {
    absl::MutexLock lock(&core->mu_);
    core->Restore(std::move(contents));
  }
  StatePersister::Save save = [state = core->state_.get()](const StateChanges& changes) {
    return state->Save(changes.runs, changes.agents, changes.artifacts, changes.stages);
  };
  if (core->options_.wrap_save) save = core->options_.wrap_save(std::move(save));
  core->persister_ = std::make_unique<StatePersister>(
      std::move(save), [core = core.get()](std::vector<Delivery> deliveries) { core->Deliver(std::move(deliveries)); });
  {
    // The first clean-up of the cache store waits a grace period: none at start-up.
    absl::MutexLock lock(&core->mu_);
    core->last_collected_ = absl::Now();
    core->last_garbage_collection_ = absl::Now();
  }
  core->housekeeping_ = std::thread([core = core.get()] { core->Housekeeping(); });
  return core;
}

ControllerCore::ControllerCore(ControllerOptions options, std::unique_ptr<BlobStore> blobs,
                               std::unique_ptr<StateStore> state, std::unique_ptr<LogBackend> log_backend)
    : options_(std::move(options)),
      blobs_(std::move(blobs)),
      state_(std::move(state)),
      logs_(std::move(log_backend)),
      scheduler_(options_.scheduler) {}

ControllerCore::~ControllerCore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (housekeeping_.joinable()) housekeeping_.join();
  persister_.reset();  // what was decided is saved (and sent, to sessions still open)
  log_writer_.reset();  // and every log chunk that came is appended
}

void ControllerCore::Restore(StateStore::Contents contents) {
  const size_t runs = contents.runs.size();
  const size_t agents = contents.agents.size();
  // Attempts that ended before the restart read as closed; only an attempt an agent
  // may still be running (the current one, assigned or running) stays open.
  for (const v1::RunRecord& record : contents.runs) {
    for (const v1::StageInfo& stage : record.run().stages()) {
      const bool live = stage.state() == v1::STAGE_ASSIGNED || stage.state() == v1::STAGE_RUNNING;
      for (int attempt = 1; attempt <= stage.attempt(); ++attempt) {
        if (live && attempt == stage.attempt()) continue;
        v1::StageRef ref;
        ref.set_run_id(record.run().id());
        ref.set_stage(stage.name());
        ref.set_attempt(attempt);
        logs_.Close(ref);
      }
    }
  }
  absl::Status restored = scheduler_.Restore(std::move(contents.runs), std::move(contents.agents), absl::Now());
  if (!restored.ok()) {
    Logger("controller")->error("{}: {}", state_->Describe(), restored.ToString());
  }
  for (v1::Artifact& artifact : contents.artifacts) {
    auto& list = artifacts_[artifact.run_id()];
    // A database from before artifacts were keyed by stage may hold a row under
    // each key for one artifact: the later one wins.
    std::erase_if(list, [&](const v1::Artifact& a) { return a.stage() == artifact.stage() && a.name() == artifact.name(); });
    list.push_back(std::move(artifact));
  }
  Logger("controller")->info("restored runs={} agents={} artifacts={} from the {}", runs, agents,
                             contents.artifacts.size(), state_->Describe());
}

void ControllerCore::Persist() {
  StateChanges changes;
  for (const std::string& id : scheduler_.TakeDirtyRuns()) {
    if (auto record = scheduler_.ExportRun(id); record.ok()) changes.runs.push_back(*std::move(record));
    for (auto& wake : run_watchers_.Take(id)) changes.after_save.push_back(std::move(wake));
  }
  changes.stages = scheduler_.TakeDirtyStages();
  for (const v1::StageRecord& stage : changes.stages) {
    for (auto& wake : run_watchers_.Take(stage.run_id())) changes.after_save.push_back(std::move(wake));
  }
  for (const std::string& name : scheduler_.TakeDirtyAgents()) {
    if (auto record = scheduler_.ExportAgent(name); record.ok()) changes.agents.push_back(*std::move(record));
  }
  changes.artifacts = std::move(unsaved_artifacts_);
  unsaved_artifacts_.clear();
  std::vector<Delivery> deliveries = std::move(outbox_);
  outbox_.clear();
  persister_->Enqueue(std::move(changes), std::move(deliveries));
}

void ControllerCore::Housekeeping() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick);
    if (stopping_) break;
    const absl::Time now = absl::Now();
    SchedulerEffects effects = scheduler_.ExpireLeases(now);
    effects.Append(scheduler_.Schedule(now));
    Apply(std::move(effects));
    std::vector<v1::CacheInfo> evicted = scheduler_.EvictCaches(options_.cache_max_bytes);
    for (const v1::CacheInfo& cache : evicted) {
      Logger("controller")->info("cache {} key {} evicted ({} bytes, least recently used; --cache_max_bytes={})",
                                 cache.cache(), cache.key(), cache.bytes(), options_.cache_max_bytes);
    }
    if (!evicted.empty()) Persist();
    if (!evicted.empty() || now - last_collected_ > options_.cache_part_grace) CollectCaches(!evicted.empty());
    if (now - last_garbage_collection_ > options_.gc_interval) {
      last_garbage_collection_ = now;
      mu_.Unlock();  // state, log and blob I/O: agents and clients go on meanwhile
      if (auto report = CollectGarbage(/*dry_run=*/false); !report.ok()) {
        Logger("controller")->warn("retention: {}", report.status().ToString());
      }
      mu_.Lock();
    }
  }
}

void ControllerCore::CollectCaches(bool evicted) {
  const std::set<std::string> live = scheduler_.LiveCacheSnapshots();
  last_collected_ = absl::Now();
  mu_.Unlock();  // disk work: agents and clients go on meanwhile
  auto collected = CollectCacheParts(*cache_blobs_, live, absl::Now(), options_.cache_part_grace);
  mu_.Lock();
  if (!collected.ok()) {
    Logger("controller")->warn("cache store clean-up failed: {}", collected.status().ToString());
  } else if (evicted || collected->removed > 0) {
    Logger("controller")->info("cache store: removed {} parts ({} bytes) nothing uses; {} parts ({} bytes) kept",
                               collected->removed, collected->removed_bytes, collected->kept, collected->kept_bytes);
  }
}

void ControllerCore::SendTo(const std::string& agent, v1::ControllerMessage message) {
  auto it = channels_.find(agent);
  if (it == channels_.end()) return;  // it gets the news when it reconnects
  outbox_.push_back(Delivery{agent, it->second.id, std::move(message)});
}

void ControllerCore::SendNow(const std::string& agent, v1::ControllerMessage message) {
  auto it = channels_.find(agent);
  if (it != channels_.end()) it->second.channel->Send(std::move(message));
}

void ControllerCore::Deliver(std::vector<Delivery> deliveries) {
  absl::MutexLock lock(&mu_);
  for (Delivery& delivery : deliveries) {
    auto it = channels_.find(delivery.agent);
    if (it != channels_.end() && it->second.id == delivery.session) it->second.channel->Send(std::move(delivery.message));
  }
}

void ControllerCore::Apply(SchedulerEffects effects) {
  for (const EndedAttempt& ended : effects.ended) {
    log_writer_->Post([this, ref = ended.ref, lost = ended.state == v1::STAGE_LOST] {
      if (lost) (void)logs_.AppendSystemLine(ref, absl::StrCat("attempt ", ref.attempt(), " lost: its agent went away"));
      logs_.Close(ref);
    });
    Logger("controller")->info("run={} stage={} attempt={} {}", ended.ref.run_id(), ended.ref.stage(),
                               ended.ref.attempt(), StateWord(ended.state));
  }
  for (AgentOrder& order : effects.orders) {
    if (order.message.has_assign()) {
      const v1::StageRef& ref = order.message.assign().stage();
      Logger("controller")->info("run={} stage={} attempt={} assigned to agent={}", ref.run_id(),
                                 ref.stage(), ref.attempt(), order.agent);
      log_writer_->Post([this, ref, line = absl::StrCat("attempt ", ref.attempt(), " on agent ", order.agent)] {
        (void)logs_.AppendSystemLine(ref, line);
      });
      // Values join the order only on its way out: they are never part of the saved state.
      v1::StageAssignment* assign = order.message.mutable_assign();
      // What the stages it takes `inputs` from published (they succeeded: it needs them).
      for (const auto& [producer, dir] : assign->spec().inputs()) {
        for (const v1::Artifact& artifact : artifacts_[ref.run_id()]) {
          if (artifact.stage() != producer || artifact.report() || !artifact.service().empty()) continue;
          v1::InputArtifact* input = assign->add_input_artifacts();
          input->set_stage(producer);
          input->set_dir(dir);
          input->set_name(artifact.name());
          input->set_sha256(artifact.sha256());
          input->set_size(artifact.size());
        }
      }
      // One deleted since submission stays out: the agent fails the stage, naming it.
      for (const std::string& name : assign->spec().secrets()) {
        if (auto value = secrets_->Values({name}); value.ok()) *assign->add_secrets() = std::move(value->front());
      }
      if (const std::string& login = assign->spec().pull_secret(); !login.empty()) {
        if (auto value = secrets_->Values({login}); value.ok()) *assign->mutable_pull_login() = std::move(value->front());
      }
    }
    SendTo(order.agent, std::move(order.message));
  }
  Persist();
}

absl::Status ControllerCore::AttachAgent(AgentChannel* channel, const v1::RegisterAgent& registration,
                                         const Caller& caller) {
  if (!IsSafeName(registration.name())) {
    return absl::InvalidArgumentError(absl::StrCat("bad agent name \"", registration.name(), "\""));
  }
  if (registration.slots() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("agent ", registration.name(), " offers no slots"));
  }
  if (caller.kind == Caller::Kind::kAgent && caller.name != registration.name()) {
    return absl::PermissionDeniedError(absl::StrCat("this certificate is agent ", caller.name,
                                                    "'s; it cannot register as ", registration.name()));
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (auto live = channels_.find(registration.name()); live != channels_.end()) {
    const std::optional<absl::Time> seen = scheduler_.LastSeen(registration.name());
    if (seen && now - *seen < 2 * options_.heartbeat_interval) {
      return absl::AlreadyExistsError(absl::StrCat("agent ", registration.name(),
                                                   " already has a live session; a second one is refused"));
    }
    // Silent for two heartbeats: that connection is dead but not yet noticed.
    live->second.channel->Close(absl::AbortedError("replaced by a newer session of this agent"));
  }
  channels_[registration.name()] = Session{channel, ++last_session_};
  v1::ControllerMessage welcome;
  welcome.mutable_welcome()->set_agent_id(registration.name());
  welcome.mutable_welcome()->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  welcome.mutable_welcome()->set_lease_timeout_ms(absl::ToInt64Milliseconds(options_.scheduler.lease_timeout));
  for (const v1::StageRef& ref : registration.running()) {
    if (!scheduler_.CheckHolder(registration.name(), ref).ok()) continue;
    v1::LogAck* ack = welcome.mutable_welcome()->add_log_acks();
    *ack->mutable_stage() = ref;
    ack->set_next_seq(logs_.NextSeq(ref));
  }
  channel->Send(std::move(welcome));
  SchedulerEffects effects = scheduler_.AgentConnected(registration, now);
  effects.Append(scheduler_.Schedule(now));
  Apply(std::move(effects));
  Logger("controller")->info("agent={} connected slots={} labels={}", registration.name(),
                             registration.slots(), registration.labels_size());
  return absl::OkStatus();
}

void ControllerCore::DetachAgent(AgentChannel* channel, const std::string& agent) {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(agent);
  if (it == channels_.end() || it->second.channel != channel) return;  // replaced by a newer session
  channels_.erase(it);
  scheduler_.AgentDisconnected(agent, absl::Now());
  Persist();
  Logger("controller")->info("agent={} disconnected", agent);
}

void ControllerCore::OnHeartbeat(const std::string& agent, const v1::Heartbeat& heartbeat) {
  absl::MutexLock lock(&mu_);
  v1::ControllerMessage ack;
  ack.mutable_heartbeat_ack();
  SendNow(agent, std::move(ack));  // never behind the disk: the agent's lease hangs on it
  const absl::Time now = absl::Now();
  SchedulerEffects effects = scheduler_.AgentHeartbeat(agent, heartbeat, now);
  effects.Append(scheduler_.Schedule(now));
  Apply(std::move(effects));
}

absl::Status ControllerCore::DrainAgent(const std::string& agent, bool drain) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status st = scheduler_.DrainAgent(agent, drain); !st.ok()) return st;
    Logger("controller")->info("agent={} {}", agent, drain ? "draining" : "takes stages again");
    Apply(scheduler_.Schedule(absl::Now()));
  }
  persister_->Sync();
  return absl::OkStatus();
}

void ControllerCore::OnStageStatus(const std::string& agent, const v1::StageStatus& status) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  auto effects = scheduler_.ApplyStatus(agent, status, now);
  // StageSettled, rejects and cancels go out once the status is saved: only then
  // may the agent forget the attempt.
  if (IsTerminal(status.state())) {
    // Recorded, or not wanted: either way the agent may forget the attempt. (Sent
    // before any order the status causes, on the same ordered stream.)
    v1::ControllerMessage settled;
    *settled.mutable_settled()->mutable_stage() = status.stage();
    SendTo(agent, std::move(settled));
  }
  if (!effects.ok()) {
    v1::ControllerMessage reject;
    *reject.mutable_reject()->mutable_stage() = status.stage();
    reject.mutable_reject()->set_reason(std::string(effects.status().message()));
    SendTo(agent, std::move(reject));
    if (!IsTerminal(status.state())) {
      // A stale holder still runs it: never two live copies of one attempt.
      v1::ControllerMessage cancel;
      *cancel.mutable_cancel()->mutable_stage() = status.stage();
      cancel.mutable_cancel()->set_state(v1::STAGE_LOST);
      cancel.mutable_cancel()->set_reason(std::string(effects.status().message()));
      SendTo(agent, std::move(cancel));
    }
    Persist();
    return;
  }
  effects->Append(scheduler_.Schedule(now));
  Apply(*std::move(effects));
}

void ControllerCore::OnLogBatch(const std::string& agent, v1::LogBatch batch) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status held = scheduler_.CheckHolder(agent, batch.stage()); !held.ok()) {
      v1::ControllerMessage reject;
      *reject.mutable_reject()->mutable_stage() = batch.stage();
      reject.mutable_reject()->set_reason(std::string(held.message()));
      SendNow(agent, std::move(reject));
      return;
    }
  }
  // A stage that ends meanwhile closes its log on this same thread, after these
  // chunks (the agent sends every chunk before the final status on one stream).
  log_writer_->Post([this, agent, batch = std::move(batch)] {
    const v1::StageRef& ref = batch.stage();
    int64_t next = logs_.NextSeq(ref);
    for (const v1::LogChunk& chunk : batch.chunks()) {
      auto appended = logs_.Append(ref, chunk.seq(), chunk.data());
      if (!appended.ok()) {
        Logger("controller")->warn("run={} stage={} attempt={} log chunk {}: {}", ref.run_id(), ref.stage(),
                                   ref.attempt(), chunk.seq(), appended.status().ToString());
        next = logs_.NextSeq(ref);
        break;
      }
      next = *appended;
    }
    v1::ControllerMessage ack;
    *ack.mutable_log_ack()->mutable_stage() = ref;
    ack.mutable_log_ack()->set_next_seq(next);
    absl::MutexLock lock(&mu_);
    SendNow(agent, std::move(ack));
  });
}

absl::Status ControllerCore::CheckUploader(const std::string& agent, const v1::StageRef& ref) {
  absl::MutexLock lock(&mu_);
  auto run = scheduler_.GetRun(ref.run_id());
  if (!run.ok()) return run.status();
  for (const v1::StageInfo& stage : run->stages()) {
    if (stage.name() != ref.stage()) continue;
    if (stage.attempt() != ref.attempt() || stage.state() != v1::STAGE_RUNNING) break;
    // A running attempt: only its holder may publish for it.
    if (!agent.empty() && stage.agent() != agent) {
      return absl::PermissionDeniedError(absl::StrCat("agent ", agent, " may not upload for run ", ref.run_id(),
                                                      " stage ", ref.stage(), " attempt ", ref.attempt(),
                                                      ": that attempt is leased to another agent"));
    }
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat("run ", ref.run_id(), " stage ", ref.stage(),
                                                    " attempt ", ref.attempt(), " is not running"));
}

absl::Status ControllerCore::CheckSourceFetch(const std::string& agent, const std::string& digest) {
  if (agent.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (scheduler_.NeedsSource(agent, digest)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("agent ", agent, " holds no stage of a run with source ",
                                                  digest.substr(0, 12)));
}

absl::StatusOr<int> ControllerCore::RevokeAgent(const std::string& agent) {
  if (identity_ == nullptr) return absl::FailedPreconditionError("security is off (--insecure): nothing to revoke");
  RETURN_IF_ERROR(identity_->RevokeAgent(agent));
  int lost = 0;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    SchedulerEffects effects = scheduler_.RevokeAgent(agent, now);
    lost = static_cast<int>(effects.ended.size());
    effects.Append(scheduler_.Schedule(now));
    Apply(std::move(effects));
  }
  persister_->Sync();  // its cancels go out while its session is still open
  absl::MutexLock lock(&mu_);
  if (auto it = channels_.find(agent); it != channels_.end()) {
    it->second.channel->Close(absl::PermissionDeniedError(absl::StrCat("agent ", agent, " was revoked")));
    channels_.erase(it);
  }
  Logger("controller")->info("agent={} revoked; running stages re-queued={}", agent, lost);
  return lost;
}

absl::StatusOr<ControllerCore::Submitted> ControllerCore::SubmitRun(v1::Pipeline pipeline, const std::string& owner,
                                                                   const std::string& idempotency_key) {
  if (idempotency_key.size() > 256 ||
      std::any_of(idempotency_key.begin(), idempotency_key.end(), [](char c) { return c < 0x20 || c == 0x7f; })) {
    return absl::InvalidArgumentError("an idempotency key is at most 256 printable characters");
  }
  if (pipeline.stages_size() > options_.max_stages) {
    return absl::InvalidArgumentError(absl::StrCat("the pipeline has ", pipeline.stages_size(),
                                                   " stages; this controller accepts at most ", options_.max_stages,
                                                   " (--max_stages)"));
  }
  if (absl::Status st = ValidateSubmitted(pipeline); !st.ok()) return st;
  for (const v1::Stage& stage : pipeline.stages()) {
    auto values = secrets_->Values({stage.secrets().begin(), stage.secrets().end()});
    if (!values.ok()) return absl::FailedPreconditionError(absl::StrCat("stage ", stage.name(), ": ", values.status().message()));
    if (!stage.pull_secret().empty()) {
      auto login = secrets_->Values({stage.pull_secret()});
      if (!login.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("stage ", stage.name(), ": pull_secret: ", login.status().message()));
      }
    }
  }
  if (!pipeline.source_digest().empty() && !blobs_->Contains(pipeline.source_digest())) {
    return absl::FailedPreconditionError(absl::StrCat("source ", pipeline.source_digest(),
                                                      " was not uploaded"));
  }
  Submitted submitted;
  {
    absl::MutexLock lock(&mu_);
    if (auto id = scheduler_.FindRunByKey(owner, idempotency_key)) {
      submitted = Submitted{*id, true};
    } else {
      const absl::Time now = absl::Now();
      submitted.run_id = scheduler_.AddRun(pipeline, now, owner, idempotency_key);
      Logger("controller")->info("run={} submitted pipeline={} stages={}{}", submitted.run_id, pipeline.name(),
                                 pipeline.stages_size(), idempotency_key.empty() ? "" : " (with an idempotency key)");
      Apply(scheduler_.Schedule(now));
    }
  }
  persister_->Sync();  // an existing run may still be on its way to the disk
  return submitted;
}

std::vector<v1::CacheInfo> ControllerCore::Caches() {
  absl::MutexLock lock(&mu_);
  return scheduler_.Caches();
}

absl::StatusOr<v1::Run> ControllerCore::GetRun(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  return scheduler_.GetRun(run_id);
}

uint64_t ControllerCore::WatchRun(const std::string& run_id, int64_t version, std::function<void()> wake) {
  {
    absl::MutexLock lock(&mu_);
    if (scheduler_.RunVersion(run_id) == version) return run_watchers_.Add(run_id, std::move(wake));
  }
  wake();
  return 0;
}

bool ControllerCore::UnwatchRun(uint64_t id) { return run_watchers_.Remove(id); }

int64_t ControllerCore::RunVersion(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  return scheduler_.RunVersion(run_id);
}

absl::Status ControllerCore::CancelRun(const std::string& run_id, const Caller& caller) {
  absl::Status decided = [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    if (caller.role < v1::ROLE_ADMIN) {
      auto run = scheduler_.GetRun(run_id);
      if (!run.ok()) return run.status();
      if (run->owner() != caller.name) {
        return absl::PermissionDeniedError(absl::StrCat("run ", run_id, " was submitted by ",
                                                        run->owner().empty() ? "someone else" : run->owner(),
                                                        "; cancelling another's run needs role admin"));
      }
    }
    auto effects = scheduler_.CancelRun(run_id, absl::Now());
    if (!effects.ok()) return effects.status();
    Logger("controller")->info("run={} cancelled", run_id);
    Apply(*std::move(effects));
    return absl::OkStatus();
  }();
  if (decided.ok()) persister_->Sync();
  return decided;
}

std::vector<v1::AgentInfo> ControllerCore::Agents() {
  absl::MutexLock lock(&mu_);
  return scheduler_.Agents();
}

absl::StatusOr<v1::StageRef> ControllerCore::ResolveAttempt(const std::string& run_id,
                                                            const std::string& stage, int attempt) {
  absl::MutexLock lock(&mu_);
  auto run = scheduler_.GetRun(run_id);
  if (!run.ok()) return run.status();
  for (const v1::StageInfo& info : run->stages()) {
    if (info.name() != stage) continue;
    if (attempt < 0 || attempt > info.attempt()) {
      return absl::NotFoundError(absl::StrCat("stage ", stage, " of run ", run_id, " has no attempt ", attempt));
    }
    v1::StageRef ref;
    ref.set_run_id(run_id);
    ref.set_stage(stage);
    ref.set_attempt(attempt == 0 ? info.attempt() : attempt);
    return ref;
  }
  return absl::NotFoundError(absl::StrCat("run ", run_id, " has no stage ", stage));
}

}  // namespace dockyard
