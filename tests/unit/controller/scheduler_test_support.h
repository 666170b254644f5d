// Builders and readers the scheduler's unit tests share: pipelines, stages, agents,
// statuses, and flattened views of the orders a call produced.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "controller/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dockyard::scheduler_test {

inline const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

struct StageOpts {
  std::vector<std::string> needs;
  std::vector<std::string> labels;
  std::vector<std::string> caches;  // names of pipeline caches the stage mounts
  int retries = 0;
};

inline v1::Stage MakeStage(const std::string& name, const StageOpts& opts = {}) {
  v1::Stage stage;
  stage.set_name(name);
  stage.set_image("alpine:3");
  stage.set_run("true");
  for (const std::string& need : opts.needs) stage.add_needs(need);
  for (const std::string& label : opts.labels) stage.add_agent_labels(label);
  for (const std::string& cache : opts.caches) {
    v1::CacheMount* mount = stage.add_caches();
    mount->set_name(cache);
    mount->set_path("/cache/" + cache);
  }
  stage.set_retries(opts.retries);
  return stage;
}

inline v1::Pipeline MakePipeline(std::initializer_list<v1::Stage> stages,
                          std::initializer_list<std::pair<std::string, std::string>> caches = {}) {
  v1::Pipeline pipeline;
  pipeline.set_name("demo");
  pipeline.set_source_digest(std::string(64, 'a'));
  for (const auto& [name, key] : caches) {
    v1::CacheSpec* cache = pipeline.add_caches();
    cache->set_name(name);
    cache->set_key(key);
  }
  for (const v1::Stage& stage : stages) *pipeline.add_stages() = stage;
  return pipeline;
}

// A pipeline of `n` independent stages s0..s(n-1).
inline v1::Pipeline Independent(int n) {
  v1::Pipeline pipeline = MakePipeline({});
  for (int i = 0; i < n; ++i) *pipeline.add_stages() = MakeStage("s" + std::to_string(i));
  return pipeline;
}

inline v1::StageRef Ref(const std::string& run, const std::string& stage, int attempt) {
  v1::StageRef ref;
  ref.set_run_id(run);
  ref.set_stage(stage);
  ref.set_attempt(attempt);
  return ref;
}

struct AgentOpts {
  int slots = 1;
  std::vector<std::string> labels;
  std::vector<v1::StageRef> running;
  std::vector<std::string> cache_keys;
};

inline v1::RegisterAgent Agent(const std::string& name, const AgentOpts& opts = {}) {
  v1::RegisterAgent agent;
  agent.set_name(name);
  agent.set_slots(opts.slots);
  agent.set_version("test");
  for (const std::string& label : opts.labels) agent.add_labels(label);
  for (const v1::StageRef& ref : opts.running) *agent.add_running() = ref;
  for (const std::string& key : opts.cache_keys) agent.add_cache_keys(key);
  return agent;
}

inline v1::StageStatus Status(const v1::StageRef& ref, v1::StageState state, int exit_code = 0,
                       const std::string& message = "") {
  v1::StageStatus status;
  *status.mutable_stage() = ref;
  status.set_state(state);
  status.set_exit_code(exit_code);
  status.set_message(message);
  return status;
}

// One assignment order, flattened for readable expectations.
struct Placement {
  std::string agent;
  std::string run;
  std::string stage;
  int attempt = 0;
};

inline std::vector<Placement> Assignments(const SchedulerEffects& effects) {
  std::vector<Placement> out;
  for (const AgentOrder& order : effects.orders) {
    if (!order.message.has_assign()) continue;
    const v1::StageRef& ref = order.message.assign().stage();
    out.push_back({order.agent, ref.run_id(), ref.stage(), ref.attempt()});
  }
  return out;
}

inline std::vector<AgentOrder> OrdersOfKind(const SchedulerEffects& effects,
                                     v1::ControllerMessage::KindCase kind) {
  std::vector<AgentOrder> out;
  for (const AgentOrder& order : effects.orders) {
    if (order.message.kind_case() == kind) out.push_back(order);
  }
  return out;
}

inline v1::Run RunOf(const Scheduler& scheduler, const std::string& run_id) {
  absl::StatusOr<v1::Run> run = scheduler.GetRun(run_id);
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? *run : v1::Run();
}

inline v1::StageInfo StageOf(const Scheduler& scheduler, const std::string& run_id,
                      const std::string& stage) {
  const v1::Run run = RunOf(scheduler, run_id);
  for (const v1::StageInfo& info : run.stages()) {
    if (info.name() == stage) return info;
  }
  ADD_FAILURE() << "no stage " << stage << " in run " << run_id;
  return v1::StageInfo();
}

inline v1::AgentInfo AgentOf(const Scheduler& scheduler, const std::string& name) {
  for (const v1::AgentInfo& info : scheduler.Agents()) {
    if (info.name() == name) return info;
  }
  ADD_FAILURE() << "no agent " << name;
  return v1::AgentInfo();
}

// Reports `state` for `ref` from `agent` and expects it to be accepted.
inline SchedulerEffects Report(Scheduler& scheduler, const std::string& agent, const v1::StageRef& ref,
                        v1::StageState state, int exit_code = 0, const std::string& message = "",
                        absl::Time now = kT0) {
  absl::StatusOr<SchedulerEffects> effects =
      scheduler.ApplyStatus(agent, Status(ref, state, exit_code, message), now);
  EXPECT_TRUE(effects.ok()) << effects.status();
  return effects.ok() ? std::move(*effects) : SchedulerEffects();
}

}  // namespace dockyard::scheduler_test
