#include "agent/agent.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/logging.h"

namespace dockyard {
namespace {

}  // namespace

Agent::Agent(AgentOptions options, std::shared_ptr<grpc::Channel> channel, DockerClient* docker)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::AgentService::NewStub(channel_)),
      docker_(docker),
      sources_(options_.work_dir + "/sources", stub_.get()),
      artifacts_(docker, stub_.get()) {
  std::error_code ec;
  std::filesystem::create_directories(options_.work_dir + "/scratch", ec);
}

Agent::~Agent() { Shutdown(); }

void Agent::Start() {
  RemoveLeftoverContainers();
  connect_thread_ = std::thread([this] { ConnectLoop(); });
  flush_thread_ = std::thread([this] { FlushLoop(); });
}

void Agent::RemoveLeftoverContainers() {
  auto leftovers = docker_->ListContainers(absl::StrCat(kAgentLabel, "=", options_.name));
  if (!leftovers.ok()) {
    Logger("agent")->warn("cannot list leftover containers: {}", leftovers.status().ToString());
    return;
  }
  for (const ContainerSummary& c : *leftovers) {
    Logger("agent")->info("removing leftover container {} (run={} stage={})", c.id.substr(0, 12),
                          c.labels.count(kRunLabel) ? c.labels.at(kRunLabel) : "?",
                          c.labels.count(kStageLabel) ? c.labels.at(kStageLabel) : "?");
    (void)docker_->RemoveContainer(c.id);
  }
}

v1::RegisterAgent Agent::Registration() {
  v1::RegisterAgent reg;
  reg.set_name(options_.name);
  for (const std::string& label : options_.labels) reg.add_labels(label);
  reg.set_slots(options_.slots);
  reg.set_version(options_.version);
  if (auto volumes = docker_->ListVolumes(kCacheKeyLabel); volumes.ok()) {
    for (const std::string& volume : *volumes) {
      absl::string_view id = volume;
      if (absl::ConsumePrefix(&id, kKeyedCacheVolumePrefix)) reg.add_cache_keys(std::string(id));
    }
  }
  absl::MutexLock lock(&mu_);
  // Finished attempts whose status may not have arrived count as running: their
  // status is resent right after Welcome, and the controller must not give them up.
  for (const auto& [key, run] : running_) *reg.add_running() = run.executor->ref();
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
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    Logger("agent")->warn("session to controller ended: {} ({}); reconnecting", status.error_message(),
                          static_cast<int>(status.error_code()));
    if (was_connected) backoff = options_.reconnect_min;
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    if (stopping_) return;
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

void Agent::FlushLoop() {
  std::vector<std::thread> done;
  for (;;) {
    std::vector<LogPump*> pumps;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.flush_interval);
      if (stopping_ && running_.empty()) return;
      for (auto& [key, run] : running_) pumps.push_back(run.pump.get());
      ReapFinished();
      // Pumps are owned by running_ entries, which are only erased by the flush
      // thread itself (ReapFinished), so they outlive this loop iteration.
      done.swap(finished_threads_);
    }
    for (LogPump* pump : pumps) pump->Flush();
    for (std::thread& t : done) t.join();  // those threads have finished their work
    done.clear();
  }
}

void Agent::ReapFinished() {
  for (auto it = running_.begin(); it != running_.end();) {
    Running& run = it->second;
    if (run.final_status && run.pump->AllAcked()) {
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

void Agent::SendLog(v1::LogBatch batch) {
  v1::AgentMessage message;
  *message.mutable_log() = std::move(batch);
  Send(std::move(message));
}

void Agent::OnMessage(const v1::ControllerMessage& message) {
  switch (message.kind_case()) {
    case v1::ControllerMessage::kWelcome: {
      Logger("agent")->info("agent={} connected to controller", options_.name);
      std::vector<std::pair<LogPump*, std::optional<v1::StageStatus>>> resend;
      std::shared_ptr<ControllerSession> session;
      {
        absl::MutexLock lock(&mu_);
        for (auto& [key, run] : running_) resend.emplace_back(run.pump.get(), run.final_status);
      }
      {
        absl::MutexLock lock(&session_mu_);
        connected_ = true;
        session = session_;
      }
      // What the controller has not acknowledged goes again, logs before statuses.
      for (auto& [pump, status] : resend) {
        pump->ResendUnacked();
        if (status) {
          v1::AgentMessage m;
          *m.mutable_stage_status() = *status;
          session->Send(std::move(m));
        }
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
      if (it != running_.end()) it->second.pump->Ack(message.log_ack().next_seq());
      break;
    }
    case v1::ControllerMessage::kReject: {
      const v1::StageRef& ref = message.reject().stage();
      Logger("agent")->warn("run={} stage={} attempt={} refused by controller: {}", ref.run_id(), ref.stage(),
                            ref.attempt(), message.reject().reason());
      // The controller will not take more of this attempt: forget what is pending.
      absl::MutexLock lock(&mu_);
      auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
      if (it != running_.end()) it->second.pump->Ack(INT64_MAX);
      break;
    }
    case v1::ControllerMessage::kRunFinished: {
      const std::string run_id = message.run_finished().run_id();
      std::thread([this, run_id] {
        auto volumes = docker_->ListVolumes(absl::StrCat(kRunLabel, "=", run_id));
        if (!volumes.ok()) return;
        for (const std::string& volume : *volumes) {
          absl::Status st = docker_->RemoveVolume(volume);
          Logger("agent")->info("run={} cache volume {} removed{}", run_id, volume,
                                st.ok() ? "" : absl::StrCat(" failed: ", st.ToString()));
        }
      }).detach();
      break;
    }
    default:
      break;
  }
}

void Agent::OnAssign(const v1::StageAssignment& assignment) {
  const v1::StageRef& ref = assignment.stage();
  Key key{ref.run_id(), ref.stage(), ref.attempt()};
  absl::MutexLock lock(&mu_);
  if (stopping_ || running_.count(key) != 0) return;
  Running& run = running_[key];
  run.pump = std::make_unique<LogPump>(ref, [this](v1::LogBatch batch) { SendLog(std::move(batch)); });
  ExecutorDeps deps{docker_, &sources_, &artifacts_, options_.name, options_.work_dir + "/scratch"};
  run.executor = std::make_shared<StageExecutor>(assignment, deps, run.pump.get());
  Logger("agent")->info("run={} stage={} attempt={} assigned image={}", ref.run_id(), ref.stage(), ref.attempt(),
                        assignment.spec().image());
  run.thread = std::thread([this, key] { RunStage(key); });
}

void Agent::RunStage(Key key) {
  StageExecutor* executor;
  LogPump* pump;
  {
    absl::MutexLock lock(&mu_);
    executor = running_.at(key).executor.get();
    pump = running_.at(key).pump.get();
  }
  v1::StageStatus status = executor->Run([&] {
    v1::AgentMessage running;
    *running.mutable_stage_status()->mutable_stage() = executor->ref();
    running.mutable_stage_status()->set_state(v1::STAGE_RUNNING);
    Send(std::move(running));
  });
  (void)pump;
  {
    absl::MutexLock lock(&mu_);
    Running& run = running_.at(key);
    run.final_status = status;
    // The flush thread erases the entry once everything is acknowledged; it needs
    // the thread joined, which must not happen on the thread itself.
    finished_threads_.push_back(std::move(run.thread));
  }
  v1::AgentMessage message;
  *message.mutable_stage_status() = status;
  Send(std::move(message));
}

void Agent::OnCancel(const v1::CancelStage& cancel) {
  const v1::StageRef& ref = cancel.stage();
  std::shared_ptr<StageExecutor> executor;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find({ref.run_id(), ref.stage(), ref.attempt()});
    if (it != running_.end() && !it->second.final_status) executor = it->second.executor;
  }
  Logger("agent")->info("run={} stage={} attempt={} cancel: {}", ref.run_id(), ref.stage(), ref.attempt(),
                        cancel.reason());
  if (executor == nullptr) {
    // Not ours any more (e.g. after a restart): make sure no container of it lives.
    std::thread([this, ref] {
      auto found = docker_->ListContainers(absl::StrCat(kRunLabel, "=", ref.run_id()));
      if (!found.ok()) return;
      for (const ContainerSummary& c : *found) {
        if (c.labels.count(kStageLabel) && c.labels.at(kStageLabel) == ref.stage() &&
            c.labels.count(kAttemptLabel) && c.labels.at(kAttemptLabel) == absl::StrCat(ref.attempt())) {
          (void)docker_->RemoveContainer(c.id);
        }
      }
    }).detach();
    return;
  }
  // Docker calls block; reactions must not.
  const v1::StageState state = cancel.state() == v1::STAGE_STATE_UNSPECIFIED ? v1::STAGE_CANCELLED : cancel.state();
  std::thread([executor, state, reason = cancel.reason()] { executor->Cancel(state, reason); }).detach();
}

void Agent::Shutdown() {
  std::vector<StageExecutor*> executors;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !connect_thread_.joinable()) return;
    for (auto& [key, run] : running_) {
      if (!run.final_status) executors.push_back(run.executor.get());
    }
  }
  for (StageExecutor* executor : executors) executor->Cancel(v1::STAGE_CANCELLED, "agent shutting down");
  // Wait for the stages to end and report (bounded: the controller may be gone).
  {
    absl::MutexLock lock(&mu_);
    auto all_reported = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (auto& [key, run] : running_) {
        if (!run.final_status || !run.pump->AllAcked()) return false;
      }
      return true;
    };
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!all_reported() && absl::Now() < deadline) {
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
