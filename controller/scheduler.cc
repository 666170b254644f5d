#include "controller/scheduler.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "controller/placement.h"
#include "controller/scheduler_refs.h"

namespace dockyard {
namespace {

using scheduler_refs::IsActive;
using scheduler_refs::Key;
using scheduler_refs::Ref;

int64_t UnixMs(absl::Time t) { return absl::ToUnixMillis(t); }

AgentOrder CancelOrder(const std::string& agent, const v1::StageRef& ref, v1::StageState state,
                       const std::string& reason) {
  AgentOrder order{agent, {}};
  auto* cancel = order.message.mutable_cancel();
  *cancel->mutable_stage() = ref;
  cancel->set_state(state);
  cancel->set_reason(reason);
  return order;
}

}  // namespace

void SchedulerEffects::Append(SchedulerEffects other) {
  for (auto& o : other.orders) orders.push_back(std::move(o));
  for (auto& e : other.ended) ended.push_back(std::move(e));
}

Scheduler::Scheduler(SchedulerOptions options) : options_(options) {}

std::optional<std::string> Scheduler::FindRunByKey(const std::string& owner,
                                                   const std::string& idempotency_key) const {
  if (idempotency_key.empty()) return std::nullopt;
  for (const auto& [id, run] : runs_) {
    if (run.run.idempotency_key() == idempotency_key && run.run.owner() == owner) return id;
  }
  return std::nullopt;
}

std::string Scheduler::AddRun(const v1::Pipeline& pipeline, absl::Time now, const std::string& owner,
                              const std::string& idempotency_key) {
  std::string id = absl::StrCat(next_run_++);
  RunEntry& run = runs_[id];
  run.seq = next_run_;
  run.pipeline = pipeline;
  run.run.set_id(id);
  run.run.set_owner(owner);
  run.run.set_idempotency_key(idempotency_key);
  run.run.set_pipeline_name(pipeline.name());
  run.run.set_state(v1::RUN_QUEUED);
  run.run.set_created_unix_ms(UnixMs(now));
  dirty_runs_.insert(id);
  for (const v1::Stage& spec : pipeline.stages()) {
    StageEntry& stage = run.stages.emplace_back();
    stage.spec = spec;
    stage.info.set_name(spec.name());
    stage.info.mutable_needs()->CopyFrom(spec.needs());
    stage.info.set_state(v1::STAGE_PENDING);
    stage.lost_retries_left = options_.lost_agent_retries;
    stage.fail_retries_left = spec.retries();
  }
  for (const v1::CacheSpec& cache : pipeline.caches()) {
    auto keyed = cache.key().empty() ? keyed_.end() : keyed_.find(absl::StrCat(cache.name(), ".", cache.key()));
    if (keyed == keyed_.end()) {
      run.cache_source[cache.name()] = cache.key().empty() ? "a new cache" : absl::StrCat("key ", cache.key(), ", new");
      continue;
    }
    run.cache_snapshot[cache.name()] = keyed->second.digest;
    run.cache_agent[cache.name()] = keyed->second.holder;
    run.cache_source[cache.name()] = keyed->second.source;
    keyed->second.last_used = now;
  }
  QueueReadyStages(run);
  return id;
}

Scheduler::StageEntry* Scheduler::FindStage(RunEntry& run, const std::string& name) {
  for (StageEntry& stage : run.stages) {
    if (stage.spec.name() == name) return &stage;
  }
  return nullptr;
}

SchedulerEffects Scheduler::AgentConnected(const v1::RegisterAgent& registration, absl::Time now) {
  SchedulerEffects effects;
  AgentEntry& agent = agents_[registration.name()];
  agent.registration = registration;
  agent.connected = true;
  agent.last_seen = now;
  TouchAgent(registration.name());
  Reconcile(agent, registration.running(), now, effects);
  // Volumes of runs that ended while it was away go now.
  for (const std::string& run_id : registration.cache_runs()) {
    auto run = runs_.find(run_id);
    if (run != runs_.end() && (run->second.run.state() == v1::RUN_QUEUED || run->second.run.state() == v1::RUN_RUNNING)) {
      continue;
    }
    AgentOrder order{registration.name(), {}};
    order.message.mutable_run_finished()->set_run_id(run_id);
    effects.orders.push_back(std::move(order));
  }
  return effects;
}

SchedulerEffects Scheduler::AgentHeartbeat(const std::string& name, const v1::Heartbeat& heartbeat,
                                           absl::Time now) {
  SchedulerEffects effects;
  auto it = agents_.find(name);
  if (it == agents_.end()) return effects;
  AgentEntry& agent = it->second;
  agent.last_seen = now;
  if (agent.registration.draining() != heartbeat.draining()) TouchAgent(name);
  agent.registration.set_draining(heartbeat.draining());
  if (!agent.connected) {
    // Back from a silence long enough to lose its lease (e.g. a paused process).
    agent.connected = true;
    Reconcile(agent, heartbeat.running(), now, effects);
  }
  return effects;
}

absl::Status Scheduler::DrainAgent(const std::string& name, bool drain) {
  auto it = agents_.find(name);
  if (it == agents_.end()) return absl::NotFoundError(absl::StrCat("no agent ", name));
  it->second.drained = drain;
  TouchAgent(name);
  return absl::OkStatus();
}

void Scheduler::Reconcile(AgentEntry& agent, const google::protobuf::RepeatedPtrField<v1::StageRef>& running,
                          absl::Time now, SchedulerEffects& effects) {
  const std::string name = agent.registration.name();
  TouchAgent(name);
  std::set<AttemptKey> reported;
  for (const v1::StageRef& ref : running) {
    reported.insert(Key(ref));
    if (!CheckHolder(name, ref).ok()) {
      agent.running.erase(Key(ref));
      effects.orders.push_back(CancelOrder(name, ref, v1::STAGE_LOST,
                                           "this attempt is no longer assigned to this agent"));
    } else {
      agent.running.insert(Key(ref));
    }
  }
  // What we think it holds but it no longer runs (it restarted and lost the
  // container, or never received the assignment) is lost.
  for (auto it = agent.running.begin(); it != agent.running.end();) {
    if (reported.count(*it) != 0) {
      ++it;
      continue;
    }
    const auto [run_id, stage_name, attempt] = *it;
    it = agent.running.erase(it);
    auto run = runs_.find(run_id);
    if (run == runs_.end()) continue;
    StageEntry* stage = FindStage(run->second, stage_name);
    if (stage != nullptr && stage->info.attempt() == attempt && IsActive(stage->info.state())) {
      LoseAttempt(run->second, *stage, absl::StrCat("agent ", name, " came back without it"), now, effects);
    }
  }
}

void Scheduler::AgentDisconnected(const std::string& name, absl::Time now) {
  auto it = agents_.find(name);
  if (it == agents_.end()) return;
  it->second.connected = false;
  it->second.disconnected_at = now;
}

SchedulerEffects Scheduler::ExpireLeases(absl::Time now) {
  SchedulerEffects effects;
  for (auto& [name, agent] : agents_) {
    // A stream can stay open while nobody is behind it (a paused process, a cut
    // network without resets): silence counts as being gone.
    if (agent.connected && now - agent.last_seen >= options_.lease_timeout) {
      agent.connected = false;
      agent.disconnected_at = agent.last_seen;
    }
    if (agent.connected || agent.running.empty()) continue;
    if (now - agent.disconnected_at < options_.lease_timeout) continue;
    LoseAgentStages(name, agent,
                    absl::StrCat("agent ", name, " did not come back within ",
                                 absl::FormatDuration(options_.lease_timeout)),
                    now, effects);
  }
  return effects;
}

SchedulerEffects Scheduler::RevokeAgent(const std::string& name, absl::Time now) {
  SchedulerEffects effects;
  auto it = agents_.find(name);
  if (it == agents_.end()) return effects;
  it->second.connected = false;
  it->second.disconnected_at = now;
  // Its last orders: stop what it ran, so there are never two live copies.
  for (const AttemptKey& key : it->second.running) {
    effects.orders.push_back(CancelOrder(name, Ref(key), v1::STAGE_LOST, "this agent was revoked"));
  }
  LoseAgentStages(name, it->second, absl::StrCat("agent ", name, " was revoked"), now, effects);
  return effects;
}

std::optional<absl::Time> Scheduler::LastSeen(const std::string& agent) const {
  auto it = agents_.find(agent);
  if (it == agents_.end()) return std::nullopt;
  return it->second.last_seen;
}

void Scheduler::LoseAgentStages(const std::string& name, AgentEntry& agent, const std::string& why,
                                absl::Time now, SchedulerEffects& effects) {
  auto running = std::move(agent.running);
  agent.running.clear();
  TouchAgent(name);
  for (const auto& [run_id, stage_name, attempt] : running) {
    auto run = runs_.find(run_id);
    if (run == runs_.end()) continue;
    StageEntry* stage = FindStage(run->second, stage_name);
    if (stage != nullptr && stage->info.attempt() == attempt && IsActive(stage->info.state())) {
      LoseAttempt(run->second, *stage, why, now, effects);
    }
  }
}

void Scheduler::LoseAttempt(RunEntry& run, StageEntry& stage, const std::string& why,
                            absl::Time now, SchedulerEffects& effects) {
  const v1::StageRef ref = Ref(run.run.id(), stage.info);
  if (stage.lost_retries_left > 0) {
    --stage.lost_retries_left;
    effects.ended.push_back({ref, v1::STAGE_LOST});
    Queue(run, stage);
    stage.info.set_message(absl::StrCat("attempt ", ref.attempt(), " lost (", why, "); retrying"));
    TouchStage(run, stage);
    return;
  }
  FinishStage(run, stage, v1::STAGE_LOST, -1, why, now, effects);
}

bool Scheduler::Eligible(const AgentEntry& agent, const StageEntry& stage) const {
  return !Draining(agent) && LabelsMatch(agent, stage);
}

bool Scheduler::LabelsMatch(const AgentEntry& agent, const StageEntry& stage) const {
  for (const std::string& label : stage.spec.agent_labels()) {
    const auto& labels = agent.registration.labels();
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) return false;
  }
  return true;
}

std::string Scheduler::WaitReason(const StageEntry& stage) const {
  bool any_connected = false;
  bool any_label_match = false;
  bool any_eligible = false;
  for (const auto& [name, agent] : agents_) {
    if (!agent.connected) continue;
    any_connected = true;
    any_label_match = any_label_match || LabelsMatch(agent, stage);
    any_eligible = any_eligible || Eligible(agent, stage);
  }
  if (!any_connected) return "waiting: no agent is connected";
  if (any_label_match && !any_eligible) return "waiting: the agents that could take it are draining";
  if (!any_label_match) {
    return absl::StrCat("waiting: no connected agent has label",
                        stage.spec.agent_labels_size() > 1 ? "s " : " ",
                        absl::StrJoin(stage.spec.agent_labels(), ", "));
  }
  return "waiting for a free slot";
}

SchedulerEffects Scheduler::Schedule(absl::Time now) {
  SchedulerEffects effects;
  std::vector<RunEntry*> order;
  for (auto& [id, run] : runs_) {
    if (run.run.state() == v1::RUN_QUEUED || run.run.state() == v1::RUN_RUNNING) order.push_back(&run);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  std::rotate(order.begin(),
              std::find_if(order.begin(), order.end(), [&](auto* r) { return r->seq > last_turn_seq_; }),
              order.end());

  auto free_slots = [](const AgentEntry& agent) {
    return agent.registration.slots() - static_cast<int>(agent.running.size());
  };
  // Round-robin over runs, one stage per run per turn, so one large run cannot
  // starve the runs submitted after it.
  bool placed_any = true;
  while (placed_any) {
    placed_any = false;
    for (RunEntry* run : order) {
      for (auto next = run->queued.begin(); next != run->queued.end();) {
        StageEntry& stage = run->stages[*next];
        if (stage.info.state() != v1::STAGE_QUEUED) {
          next = run->queued.erase(next);  // placed, cancelled or skipped since
          continue;
        }
        ++next;
        if (stage.ready_since == absl::InfinitePast()) stage.ready_since = now;
        std::vector<Candidate> candidates;
        for (auto& [name, agent] : agents_) {
          if (agent.connected && free_slots(agent) > 0 && Eligible(agent, stage)) {
            candidates.push_back({name, free_slots(agent)});
          }
        }
        std::optional<CacheHolder> holder;
        if (auto name = CacheHolderOf(*run, stage)) {
          auto it = agents_.find(*name);
          holder = CacheHolder{*name, it != agents_.end() && it->second.connected,
                               it != agents_.end() && Eligible(it->second, stage)};
        }
        const Placement placement = Place(candidates, holder, now - stage.ready_since, options_.cache_wait);
        if (placement.agent.empty()) {
          if (!placement.why.empty() && stage.info.message() != placement.why) {
            stage.info.set_message(placement.why);
            TouchStage(*run, stage);
          }
          continue;
        }
        AgentEntry* best = &agents_.at(placement.agent);
        stage.ready_since = absl::InfinitePast();

        const std::string& agent_name = best->registration.name();
        stage.info.set_attempt(stage.info.attempt() + 1);
        stage.info.set_state(v1::STAGE_ASSIGNED);
        stage.info.set_agent(agent_name);
        stage.info.set_message(placement.why);
        const v1::StageRef ref = Ref(run->run.id(), stage.info);
        best->running.insert(Key(ref));
        TouchAgent(agent_name);
        TouchStage(*run, stage);
        if (run->run.state() == v1::RUN_QUEUED) {
          run->run.set_state(v1::RUN_RUNNING);
          Touch(*run);
        }

        AgentOrder order_msg{agent_name, {}};
        v1::StageAssignment* assign = order_msg.message.mutable_assign();
        *assign->mutable_stage() = ref;
        *assign->mutable_spec() = stage.spec;
        assign->set_pipeline_name(run->pipeline.name());
        assign->set_source_digest(run->pipeline.source_digest());
        // The run's images are what its first stages ran: later ones, on any agent,
        // must run the same (a stage that started first pins the image).
        for (const StageEntry& other : run->stages) {
          if (other.info.image_id().empty()) continue;
          assign->mutable_pinned_images()->insert({other.info.image(), other.info.image_id()});
        }
        stage.info.clear_caches();
        for (const v1::CacheMount& mount : stage.spec.caches()) {
          for (const v1::CacheSpec& cache : run->pipeline.caches()) {
            if (cache.name() == mount.name()) *assign->add_caches() = cache;
          }
          // Every attempt starts from the run's latest snapshot: never from what a
          // failed attempt left.
          v1::CacheDigests* start = assign->add_cache_starts();
          start->set_name(mount.name());
          start->set_consumed(run->cache_snapshot[mount.name()]);
          start->set_source(run->cache_source[mount.name()]);
          *stage.info.add_caches() = *start;
          if (run->cache_hosts.insert(agent_name).second) Touch(*run);
        }
        effects.orders.push_back(std::move(order_msg));
        last_turn_seq_ = run->seq;
        placed_any = true;
        break;  // next run's turn
      }
    }
  }

  for (RunEntry* run : order) {
    for (const int index : run->queued) {
      StageEntry& stage = run->stages[index];
      if (stage.info.state() != v1::STAGE_QUEUED) continue;
      std::string reason = WaitReason(stage);
      // Keep "attempt N lost; retrying" (and a cache wait) visible until the stage is placed.
      if (absl::StrContains(stage.info.message(), "retrying")) continue;
      if (absl::StartsWith(stage.info.message(), "waiting up to")) continue;
      if (stage.info.message() != reason) {
        stage.info.set_message(reason);
        TouchStage(*run, stage);
      }
    }
  }
  (void)now;
  return effects;
}

absl::Status Scheduler::CheckHolder(const std::string& agent, const v1::StageRef& ref) const {
  auto run = runs_.find(ref.run_id());
  if (run != runs_.end()) {
    for (const StageEntry& stage : run->second.stages) {
      if (stage.spec.name() != ref.stage()) continue;
      if (stage.info.attempt() == ref.attempt() && stage.info.agent() == agent &&
          IsActive(stage.info.state())) {
        return absl::OkStatus();
      }
    }
  }
  return absl::FailedPreconditionError(absl::StrCat("run ", ref.run_id(), " stage ", ref.stage(),
                                                    " attempt ", ref.attempt(),
                                                    " is not assigned to agent ", agent));
}

absl::StatusOr<SchedulerEffects> Scheduler::ApplyStatus(const std::string& agent_name,
                                                        const v1::StageStatus& status,
                                                        absl::Time now) {
  const v1::StageRef& ref = status.stage();
  if (IsTerminal(status.state())) {
    // Whatever the attempt's fate, the agent's slot is free again.
    auto agent = agents_.find(agent_name);
    if (agent != agents_.end() && agent->second.running.erase(Key(ref)) > 0) TouchAgent(agent_name);
  }
  if (absl::Status held = CheckHolder(agent_name, ref); !held.ok()) return held;

  RunEntry& run = runs_.at(ref.run_id());
  StageEntry& stage = *FindStage(run, ref.stage());
  SchedulerEffects effects;
  if (!status.image_id().empty()) {
    stage.info.set_image(status.image());
    stage.info.set_image_id(status.image_id());
  }
  switch (status.state()) {
    case v1::STAGE_RUNNING:
      stage.info.set_state(v1::STAGE_RUNNING);
      stage.info.set_started_unix_ms(UnixMs(now));
      TouchStage(run, stage);
      return effects;
    case v1::STAGE_FAILED:
      if (stage.fail_retries_left > 0) {
        --stage.fail_retries_left;
        effects.ended.push_back({ref, v1::STAGE_FAILED});
        Queue(run, stage);
        stage.info.set_exit_code(status.exit_code());
        stage.info.set_message(absl::StrCat("attempt ", ref.attempt(), " failed (", status.message(),
                                            "); retrying"));
        TouchStage(run, stage);
        return effects;
      }
      [[fallthrough]];
    case v1::STAGE_SUCCEEDED:
    case v1::STAGE_TIMED_OUT:
    case v1::STAGE_CANCELLED:
      if (status.state() == v1::STAGE_SUCCEEDED) RecordCaches(run, stage, agent_name, status);
      FinishStage(run, stage, status.state(), status.exit_code(), status.message(), now, effects);
      return effects;
    case v1::STAGE_LOST: {
      // The holder gave it up itself (it was cut off and fenced): like a lost agent.
      auto agent = agents_.find(agent_name);
      if (agent != agents_.end()) agent->second.running.erase(Key(ref));
      LoseAttempt(run, stage, status.message(), now, effects);
      Touch(run);
      return effects;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("an agent may not report state ", v1::StageState_Name(status.state())));
  }
}

void Scheduler::FinishStage(RunEntry& run, StageEntry& stage, v1::StageState state, int exit_code,
                            const std::string& message, absl::Time now, SchedulerEffects& effects) {
  if (stage.info.attempt() > 0) effects.ended.push_back({Ref(run.run.id(), stage.info), state});
  stage.info.set_state(state);
  stage.info.set_exit_code(exit_code);
  stage.info.set_message(message);
  stage.info.set_finished_unix_ms(UnixMs(now));
  TouchStage(run, stage);
  if (state == v1::STAGE_SUCCEEDED) {
    QueueReadyStages(run);
  } else {
    SkipDependents(run, stage.spec.name());
  }
  SettleRun(run, now, effects);
}

void Scheduler::Queue(RunEntry& run, StageEntry& stage) {
  stage.info.set_state(v1::STAGE_QUEUED);
  run.queued.insert(static_cast<int>(&stage - run.stages.data()));
}

void Scheduler::QueueReadyStages(RunEntry& run) {
  for (StageEntry& stage : run.stages) {
    if (stage.info.state() != v1::STAGE_PENDING) continue;
    bool ready = true;
    for (const std::string& need : stage.spec.needs()) {
      StageEntry* dep = FindStage(run, need);
      ready = ready && dep != nullptr && dep->info.state() == v1::STAGE_SUCCEEDED;
    }
    if (ready) {
      Queue(run, stage);
      TouchStage(run, stage);
    }
  }
}

void Scheduler::SkipDependents(RunEntry& run, const std::string& failed) {
  for (StageEntry& stage : run.stages) {
    if (IsTerminal(stage.info.state())) continue;
    const auto& needs = stage.spec.needs();
    if (std::find(needs.begin(), needs.end(), failed) == needs.end()) continue;
    stage.info.set_state(v1::STAGE_SKIPPED);
    stage.info.set_message(absl::StrCat("skipped: needs ", failed, ", which did not succeed"));
    TouchStage(run, stage);
    SkipDependents(run, stage.spec.name());
  }
}

void Scheduler::SettleRun(RunEntry& run, absl::Time now, SchedulerEffects& effects) {
  if (run.run.state() != v1::RUN_QUEUED && run.run.state() != v1::RUN_RUNNING) return;
  bool cancelled = false;
  const StageEntry* first_failed = nullptr;
  for (const StageEntry& stage : run.stages) {
    if (!IsTerminal(stage.info.state())) return;
    if (stage.info.state() == v1::STAGE_CANCELLED) cancelled = true;
    if (first_failed == nullptr && stage.info.state() != v1::STAGE_SUCCEEDED &&
        stage.info.state() != v1::STAGE_SKIPPED && stage.info.state() != v1::STAGE_CANCELLED) {
      first_failed = &stage;
    }
  }
  if (cancelled) {
    run.run.set_state(v1::RUN_CANCELLED);
    run.run.set_message("cancelled");
  } else if (first_failed != nullptr) {
    run.run.set_state(v1::RUN_FAILED);
    run.run.set_message(absl::StrCat("stage ", first_failed->spec.name(), " ",
                                     absl::AsciiStrToLower(absl::StripPrefix(
                                         v1::StageState_Name(first_failed->info.state()), "STAGE_")),
                                     first_failed->info.message().empty() ? "" : ": ",
                                     first_failed->info.message()));
  } else {
    run.run.set_state(v1::RUN_SUCCEEDED);
  }
  run.run.set_finished_unix_ms(UnixMs(now));
  Touch(run);
  if (run.run.state() == v1::RUN_SUCCEEDED) PublishKeyedCaches(run, now);
  std::set<std::string> holders = run.cache_hosts;
  for (const std::string& agent : holders) {
    AgentOrder order{agent, {}};
    order.message.mutable_run_finished()->set_run_id(run.run.id());
    effects.orders.push_back(std::move(order));
  }
}

absl::StatusOr<SchedulerEffects> Scheduler::CancelRun(const std::string& run_id, absl::Time now) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  RunEntry& run = it->second;
  SchedulerEffects effects;
  for (StageEntry& stage : run.stages) {
    if (IsTerminal(stage.info.state())) continue;
    if (IsActive(stage.info.state())) {
      const v1::StageRef ref = Ref(run_id, stage.info);
      effects.orders.push_back(CancelOrder(stage.info.agent(), ref, v1::STAGE_CANCELLED, "run cancelled"));
      effects.ended.push_back({ref, v1::STAGE_CANCELLED});
    }
    stage.info.set_state(v1::STAGE_CANCELLED);
    stage.info.set_message("cancelled");
    stage.info.set_finished_unix_ms(UnixMs(now));
  }
  Touch(run);
  SettleRun(run, now, effects);
  return effects;
}

}  // namespace dockyard
