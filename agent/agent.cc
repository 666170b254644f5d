#include "agent/agent.h"

#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/stage_spool.h"
#include "common/process_tuning.h"
#include "common/logging.h"

namespace dockyard {
namespace {

std::string Label(const ContainerSummary& c, const char* key) {
  auto it = c.labels.find(key);
  return it == c.labels.end() ? "" : it->second;
}

}  // namespace

Agent::Agent(AgentOptions options, std::shared_ptr<grpc::Channel> channel, DockerClient* docker)
    : options_(std::move(options)),
      spool_root_(options_.work_dir + "/spool"),
      channel_(std::move(channel)),
      stub_(v1::AgentService::NewStub(channel_)),
      docker_(docker),
      sources_(options_.work_dir + "/sources", stub_.get()),
      artifacts_(docker, stub_.get(), options_.artifact_limits),
      caches_(docker, stub_.get(), options_.work_dir, options_.cache_max_bytes),
      inputs_(stub_.get(), options_.work_dir + "/inputs", options_.inputs_max_bytes),
      image_cache_(docker_, options_.work_dir + "/images", options_.name, options_.image_cache_bytes),
      images_(docker_, &sources_, &image_cache_, options_.work_dir + "/scratch", options_.name,
              options_.sandbox.allow_network),
      pulls_(docker_, options_.registry_auth_file.empty() ? options_.work_dir + "/registry-auth.json"
                                                          : options_.registry_auth_file,
             options_.name) {
  std::error_code ec;
  std::filesystem::create_directories(options_.work_dir + "/scratch", ec);
  std::filesystem::create_directories(spool_root_, ec);
}

Agent::~Agent() { Shutdown(); }

void Agent::Start() {
  Recover();
  auto evicted = image_cache_.Evict();  // a lowered --image_cache_bytes holds from the start
  if (!evicted.ok()) Logger("agent")->warn("image cache: {}", evicted.status().ToString());
  for (const std::string& line : evicted.ok() ? *evicted : std::vector<std::string>{}) Logger("agent")->info(line);
  connect_thread_ = std::thread([this] { ConnectLoop(); });
  flush_thread_ = std::thread([this] { FlushLoop(); });
}

std::unique_ptr<LogPump> Agent::NewPump(const v1::StageRef& ref, const std::string& spool_dir) {
  return std::make_unique<LogPump>(
      ref,
      [this](v1::LogBatch batch) {
        v1::AgentMessage message;
        *message.mutable_log() = std::move(batch);
        Send(std::move(message));
      },
      LogPumpOptions{.max_log_bytes = options_.max_log_bytes}, SpoolLogPath(spool_dir));
}

void Agent::Recover() {
  auto log = Logger("agent");
  std::map<Key, std::string> containers;              // each attempt's own
  std::multimap<Key, std::string> companions;         // its services and their network holder
  auto found = docker_->ListContainers(absl::StrCat(kAgentLabel, "=", options_.name));
  if (!found.ok()) log->warn("cannot list this agent's containers: {}", found.status().ToString());
  for (const ContainerSummary& c : found.ok() ? *found : std::vector<ContainerSummary>{}) {
    int attempt = 0;
    if (!absl::SimpleAtoi(Label(c, kAttemptLabel), &attempt)) attempt = 0;
    const Key key{Label(c, kRunLabel), Label(c, kStageLabel), attempt};
    const std::string role = Label(c, kRoleLabel);
    if (role.empty() || role == "stage") {
      containers[key] = c.id;
    } else {
      companions.emplace(key, c.id);
    }
  }

  absl::MutexLock lock(&mu_);
  for (const std::string& dir : ListSpools(spool_root_)) {
    auto assignment = LoadSpoolAssignment(dir);
    if (!assignment.ok()) {
      RemoveSpool(dir);
      continue;
    }
    const v1::StageRef& ref = assignment->stage();
    const Key key{ref.run_id(), ref.stage(), ref.attempt()};
    std::optional<v1::StageStatus> status = LoadSpoolStatus(dir);
    auto container = containers.find(key);
    if (!status && container == containers.end()) {
      // Its container is gone: nothing to resume. The controller, not hearing of
      // it, re-queues the attempt.
      log->warn("run={} stage={} attempt={} container vanished while the agent was down", ref.run_id(),
                ref.stage(), ref.attempt());
      RemoveSpool(dir);
      continue;
    }
    Running& run = running_[key];
    run.ref = ref;
    run.spool_dir = dir;
    if (status) {
      // Over before the restart; its status may not have reached the controller.
      run.pump = NewPump(ref, dir);
      run.final_status = status;
      continue;
    }
    run.thread = std::thread([this, key, a = *assignment, id = container->second] { RunStage(key, a, id); });
    containers.erase(container);
    companions.erase(key);  // the adopted attempt stops its services itself
  }
  // Removed only once the controller has welcomed this agent: until then this
  // process may be an impostor (or a copy) whose namesake still runs them.
  orphans_.assign(containers.begin(), containers.end());
  orphans_.insert(orphans_.end(), companions.begin(), companions.end());
}

void Agent::RemoveOrphans() {
  std::vector<std::pair<Key, std::string>> orphans;
  {
    absl::MutexLock lock(&mu_);
    orphans.swap(orphans_);
  }
  if (orphans.empty()) return;
  chores_.Post([this, orphans = std::move(orphans)] {
    for (const auto& [key, id] : orphans) {
      Logger("agent")->info("removing container {} of run={} stage={} attempt={}: this agent no longer runs it",
                            id.substr(0, 12), std::get<0>(key), std::get<1>(key), std::get<2>(key));
      (void)docker_->RemoveContainer(id);
    }
  });
}

std::vector<v1::StageRef> Agent::Unsettled() {
  std::vector<v1::StageRef> refs;
  absl::MutexLock lock(&mu_);
  // Finished attempts whose status may not have arrived count as running: their
  // status is resent right after Welcome, and the controller must not give them up.
  for (const auto& [key, run] : running_) {
    if (!run.settled) refs.push_back(run.ref);
  }
  return refs;
}

v1::RegisterAgent Agent::Registration() {
  v1::RegisterAgent reg;
  reg.set_name(options_.name);
  for (const std::string& label : options_.labels) reg.add_labels(label);
  reg.set_slots(options_.slots);
  reg.set_version(options_.version);
  for (v1::StageRef& ref : Unsettled()) *reg.add_running() = std::move(ref);
  if (auto volumes = docker_->ListVolumes(absl::StrCat(kAgentLabel, "=", options_.name)); volumes.ok()) {
    std::set<std::string> runs;
    for (const std::string& volume : *volumes) {
      if (std::string run = RunOfCacheVolume(volume); !run.empty()) runs.insert(run);
    }
    for (const std::string& run : runs) reg.add_cache_runs(run);
  }
  absl::MutexLock lock(&mu_);
  reg.set_draining(draining_);
  return reg;
}

void Agent::ConnectLoop() {
  absl::Duration backoff = options_.reconnect_min;
  for (;;) {
    auto session = std::make_shared<ControllerSession>(
        stub_.get(), [this](const v1::ControllerMessage& m) { OnMessage(m); });
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    {
      absl::MutexLock lock(&session_mu_);
      session_ = session;
      connected_ = false;
    }
    session->Start(Registration());
    grpc::Status status = session->Wait();
    bool was_connected;
    {
      absl::MutexLock lock(&session_mu_);
      was_connected = connected_;
      connected_ = false;
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      // Not a network hiccup: the controller refused this agent. Keep trying (an
      // operator may fix it), but say so loudly.
      Logger("agent")->error("the controller refused this agent: {}; retrying in {}", status.error_message(),
                             absl::FormatDuration(backoff));
    } else {
      Logger("agent")->warn("session to controller ended: {} (code {}); reconnecting", status.error_message(),
                            static_cast<int>(status.error_code()));
    }
    if (was_connected) backoff = options_.reconnect_min;
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    if (stopping_) return;
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

void Agent::SendHeartbeat() {
  v1::AgentMessage message;
  for (v1::StageRef& ref : Unsettled()) *message.mutable_heartbeat()->add_running() = std::move(ref);
  {
    absl::MutexLock lock(&mu_);
    message.mutable_heartbeat()->set_draining(draining_);
  }
  Send(std::move(message));
}

void Agent::FlushLoop() {
  std::vector<std::thread> done;
  absl::Time last_heartbeat = absl::Now();
  for (;;) {
    std::vector<LogPump*> pumps;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || flush_now_; };
      mu_.AwaitWithTimeout(absl::Condition(&wake), options_.flush_interval);
      if (stopping_) return;
      flush_now_ = false;
      // Reaped first: pumps are owned by running_ entries, which only this thread
      // erases, so the ones gathered after it outlive this iteration.
      ReapSettled();
      for (auto& [key, run] : running_) {
        if (run.pump) pumps.push_back(run.pump.get());
      }
      done.swap(finished_threads_);
    }
    for (LogPump* pump : pumps) pump->Flush();
    SendFinalStatuses();
    for (std::thread& t : done) t.join();  // those threads have finished their work
    done.clear();
    absl::Duration interval;
    {
      absl::MutexLock lock(&session_mu_);
      interval = heartbeat_interval_;
    }
    if (absl::Now() - last_heartbeat >= interval) {
      SendHeartbeat();
      last_heartbeat = absl::Now();
    }
    FenceIfCutOff();
  }
}

void Agent::SendFinalStatuses() {
  std::vector<v1::AgentMessage> statuses;
  std::shared_ptr<ControllerSession> session;
  {
    // Under mu_ no Welcome can rewind the logs or unmark the statuses meanwhile.
    absl::MutexLock lock(&mu_);
    std::vector<Running*> ready;
    for (auto& [key, run] : running_) {
      if (run.final_status && !run.status_sent && run.pump && run.pump->AllSent()) ready.push_back(&run);
    }
    if (ready.empty()) return;
    absl::MutexLock session_lock(&session_mu_);  // after the pumps': see the lock order
    if (!connected_) return;
    session = session_;
    for (Running* run : ready) {
      run->status_sent = true;
      *statuses.emplace_back().mutable_stage_status() = *run->final_status;
    }
  }
  // Should this session end first, the next Welcome marks them unsent again.
  for (v1::AgentMessage& status : statuses) session->Send(std::move(status));
}

void Agent::FenceIfCutOff() {
  absl::Duration silent;
  absl::Duration lease;
  absl::Duration margin;
  {
    absl::MutexLock lock(&session_mu_);
    if (lease_ <= absl::ZeroDuration()) return;  // never welcomed: no lease to keep
    silent = absl::Now() - last_heard_;
    lease = lease_;
    // The controller's clock for the lease started at our last heartbeat it heard,
    // which is before its last answer reached us: stop with a margin to spare.
    margin = std::min(lease / 4, 2 * heartbeat_interval_);
  }
  if (silent < lease - margin) return;
  std::vector<std::shared_ptr<StageExecutor>> fenced;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, run] : running_) {
      if (run.fenced || run.final_status || !run.executor) continue;
      run.fenced = true;
      fenced.push_back(run.executor);
    }
  }
  if (fenced.empty()) return;
  const std::string why = absl::StrCat("cut off from the controller for ", absl::FormatDuration(silent),
                                       " (its lease is ", absl::FormatDuration(lease),
                                       "): stopped so that no second copy of the stage runs");
  Logger("agent")->warn("{} stage(s) {}", fenced.size(), why);
  for (std::shared_ptr<StageExecutor>& executor : fenced) {
    chores_.Post([executor, why] { executor->Cancel(v1::STAGE_LOST, why); });
  }
}

void Agent::ReapSettled() {
  for (auto it = running_.begin(); it != running_.end();) {
    Running& run = it->second;
    if (run.settled && run.final_status && !run.thread.joinable()) {
      RemoveSpool(run.spool_dir);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void Agent::Send(v1::AgentMessage message) {
  std::shared_ptr<ControllerSession> session;
  {
    absl::MutexLock lock(&session_mu_);
    if (!connected_) return;  // resent after the next Welcome
    session = session_;
  }
  session->Send(std::move(message));
}

void Agent::OnMessage(const v1::ControllerMessage& message) {
  {
    absl::MutexLock lock(&session_mu_);
    last_heard_ = absl::Now();
  }
  switch (message.kind_case()) {
    case v1::ControllerMessage::kWelcome: {
      Logger("agent")->info("agent={} connected to controller", options_.name);
      RemoveOrphans();
      {
        // One step for the flush thread: it sees every log rewound and every final
        // status unsent, or none of it.
        absl::MutexLock lock(&mu_);
        // Resume each log where the controller's copy ends (after a restart the
        // pump only knows what its spool holds, not what was acknowledged).
        for (const v1::LogAck& ack : message.welcome().log_acks()) {
          const v1::StageRef& ref = ack.stage();
          auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
          if (it != running_.end() && it->second.pump) it->second.pump->Ack(ack.next_seq());
        }
        // What the controller has not acknowledged goes again (the flush thread reads
        // it from the spools), logs before statuses; it drops what it already has by
        // sequence number.
        for (auto& [key, run] : running_) {
          if (run.pump) run.pump->RewindToUnacked();
          run.status_sent = false;
        }
        flush_now_ = true;
        absl::MutexLock session_lock(&session_mu_);
        connected_ = true;
        heartbeat_interval_ = absl::Milliseconds(std::max<int64_t>(100, message.welcome().heartbeat_interval_ms()));
        lease_ = absl::Milliseconds(message.welcome().lease_timeout_ms());
      }
      break;
    }
    case v1::ControllerMessage::kAssign:
      OnAssign(message.assign());
      break;
    case v1::ControllerMessage::kCancel:
      OnCancel(message.cancel());
      break;
    case v1::ControllerMessage::kLogAck: {
      const v1::StageRef& ref = message.log_ack().stage();
      absl::MutexLock lock(&mu_);
      auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
      if (it != running_.end() && it->second.pump) it->second.pump->Ack(message.log_ack().next_seq());
      break;
    }
    case v1::ControllerMessage::kSettled: {
      const v1::StageRef& ref = message.settled().stage();
      absl::MutexLock lock(&mu_);
      auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
      if (it != running_.end() && it->second.final_status) it->second.settled = true;
      break;
    }
    case v1::ControllerMessage::kReject: {
      const v1::StageRef& ref = message.reject().stage();
      Logger("agent")->warn("run={} stage={} attempt={} refused by controller: {}", ref.run_id(), ref.stage(),
                            ref.attempt(), message.reject().reason());
      // The controller will take no more of this attempt: stop resending it.
      absl::MutexLock lock(&mu_);
      auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
      if (it != running_.end() && it->second.pump) it->second.pump->Ack(INT64_MAX);
      break;
    }
    case v1::ControllerMessage::kHeartbeatAck:
      break;  // heard: that is all it says
    case v1::ControllerMessage::kRunFinished: {
      const std::string run_id = message.run_finished().run_id();
      chores_.Post([this, run_id] { RemoveRunVolumes(run_id, absl::Now() + absl::Minutes(1)); });
      break;
    }
    default:
      break;
  }
}

void Agent::RemoveRunVolumes(const std::string& run_id, absl::Time give_up) {
  {
    // A cancelled stage of the run may still be stopping here: its container holds
    // the volume until it is gone. Looked at again shortly (a chore never waits).
    absl::MutexLock lock(&mu_);
    bool stopping = false;
    for (const auto& [key, run] : running_) stopping = stopping || (std::get<0>(key) == run_id && !run.final_status);
    if (stopping && !stopping_ && absl::Now() < give_up) {
      chores_.At(absl::Now() + absl::Milliseconds(200), [this, run_id, give_up] { RemoveRunVolumes(run_id, give_up); });
      return;
    }
  }
  // Only this agent's: other agents (of other controllers, too) may share the engine.
  auto volumes = docker_->ListVolumes(absl::StrCat(kAgentLabel, "=", options_.name));
  if (!volumes.ok()) return;
  for (const std::string& volume : *volumes) {
    if (RunOfCacheVolume(volume) != run_id) continue;
    absl::Status st = docker_->RemoveVolume(volume);
    caches_.Forget(volume);
    Logger("agent")->info("run={} cache volume {} removed{}", run_id, volume,
                          st.ok() ? "" : absl::StrCat(" failed: ", st.ToString()));
  }
}

void Agent::OnAssign(const v1::StageAssignment& assignment) {
  const v1::StageRef& ref = assignment.stage();
  Key key{ref.run_id(), ref.stage(), ref.attempt()};
  absl::MutexLock lock(&mu_);
  if (stopping_ || running_.count(key) != 0) return;
  Running& run = running_[key];
  run.ref = ref;
  run.spool_dir = SpoolDir(spool_root_, ref);
  Logger("agent")->info("run={} stage={} attempt={} assigned image={}", ref.run_id(), ref.stage(), ref.attempt(),
                        assignment.spec().image());
  run.thread = std::thread([this, key, assignment] { RunStage(key, assignment, std::nullopt); });
}

void Agent::RunStage(Key key, v1::StageAssignment assignment, std::optional<std::string> adopt) {
  std::string spool_dir;
  {
    absl::MutexLock lock(&mu_);
    spool_dir = running_.at(key).spool_dir;
  }
  if (!adopt) {
    // Secret values never touch the agent's disk: a re-adopting agent reads them
    // back from the container's environment.
    v1::StageAssignment spooled = assignment;
    spooled.clear_secrets();
    spooled.clear_pull_login();
    if (absl::Status st = CreateSpool(spool_dir, spooled); !st.ok()) {
      Logger("agent")->warn("run={} stage={}: cannot spool ({}); a restart would lose this attempt",
                            assignment.stage().run_id(), assignment.stage().stage(), st.ToString());
    }
  }
  auto pump = NewPump(assignment.stage(), spool_dir);
  ExecutorDeps deps{docker_, &sources_, &artifacts_, &caches_, &inputs_, &images_, &pulls_, &chores_, options_.name,
                    options_.work_dir + "/scratch", options_.sandbox, options_.max_service_log_bytes,
                    options_.container_log};
  auto executor = std::make_shared<StageExecutor>(assignment, deps, pump.get());
  {
    absl::MutexLock lock(&mu_);
    Running& run = running_.at(key);
    run.pump = std::move(pump);
    run.executor = executor;
  }
  v1::StageStatus status = adopt ? executor->Adopt(*adopt) : executor->Run([&] {
    v1::AgentMessage running;
    *running.mutable_stage_status()->mutable_stage() = executor->ref();
    running.mutable_stage_status()->set_state(v1::STAGE_RUNNING);
    executor->SetImage(*running.mutable_stage_status());
    Send(std::move(running));
  });
  (void)SaveSpoolStatus(spool_dir, status);
  // Once the last log batch is out, what the stage's transfers used goes back to the
  // kernel: an agent idles small.
  chores_.At(absl::Now() + absl::Seconds(2), [] { ReleaseFreeMemory(); });
  absl::MutexLock lock(&mu_);
  Running& run = running_.at(key);
  run.final_status = status;
  // The flush thread sends it after the log's last chunk, and joins this thread (a
  // thread cannot join itself).
  finished_threads_.push_back(std::move(run.thread));
  flush_now_ = true;
}

void Agent::OnCancel(const v1::CancelStage& cancel) {
  const v1::StageRef& ref = cancel.stage();
  std::shared_ptr<StageExecutor> executor;
  bool known = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
    known = it != running_.end();
    if (known && !it->second.final_status) executor = it->second.executor;
  }
  Logger("agent")->info("run={} stage={} attempt={} cancel: {}", ref.run_id(), ref.stage(), ref.attempt(),
                        cancel.reason());
  const v1::StageState state = cancel.state() == v1::STAGE_STATE_UNSPECIFIED ? v1::STAGE_CANCELLED : cancel.state();
  // Docker calls block; reactions must not.
  chores_.Post([this, executor, known, state, ref, reason = cancel.reason()] {
    if (executor) return executor->Cancel(state, reason);
    if (known) return;  // already over
    // Not ours any more (e.g. from before a restart): make sure nothing of it lives.
    auto found = docker_->ListContainers(absl::StrCat(kRunLabel, "=", ref.run_id()));
    if (!found.ok()) return;
    for (const ContainerSummary& c : *found) {
      if (Label(c, kAgentLabel) == options_.name && Label(c, kStageLabel) == ref.stage() &&
          Label(c, kAttemptLabel) == absl::StrCat(ref.attempt())) {
        (void)docker_->RemoveContainer(c.id);
      }
    }
  });
}

void Agent::Drain(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  SendHeartbeat();  // the controller stops assigning now, not at the next beat
  Logger("agent")->info("draining: waiting up to {} for running stages", absl::FormatDuration(grace));
  const absl::Time deadline = absl::Now() + grace;
  absl::MutexLock lock(&mu_);
  for (;;) {
    bool busy = false;
    for (auto& [key, run] : running_) busy = busy || !run.final_status;
    if (!busy || drain_ended_ || absl::Now() >= deadline) break;
    mu_.AwaitWithTimeout(absl::Condition(&drain_ended_), absl::Milliseconds(100));
  }
}

void Agent::EndDrain() {
  absl::MutexLock lock(&mu_);
  drain_ended_ = true;
}

void Agent::Shutdown() {
  std::vector<std::shared_ptr<StageExecutor>> executors;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (auto& [key, run] : running_) {
      if (!run.final_status && run.executor) executors.push_back(run.executor);
    }
  }
  for (auto& executor : executors) executor->Cancel(v1::STAGE_CANCELLED, "agent shutting down");
  // Wait for the stages to end and be settled (bounded: the controller may be gone).
  {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      bool pending = false;
      for (auto& [key, run] : running_) pending = pending || !run.final_status || !run.settled;
      if (!pending || absl::Now() >= deadline) break;
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(50));
    }
    stopping_ = true;
  }
  std::shared_ptr<ControllerSession> session;
  {
    absl::MutexLock lock(&session_mu_);
    session = session_;
  }
  if (session) session->Cancel();
  if (connect_thread_.joinable()) connect_thread_.join();
  if (flush_thread_.joinable()) flush_thread_.join();
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads = std::move(finished_threads_);
    for (auto& [key, run] : running_) {
      if (run.thread.joinable()) threads.push_back(std::move(run.thread));
    }
  }
  for (auto& t : threads) t.join();
}

}  // namespace dockyard
