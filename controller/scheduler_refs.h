// Conversions between an attempt's wire reference and the scheduler's key, shared
// by the scheduler's files (internal to controller/scheduler*.cc).
#pragma once

#include <string>

#include "controller/scheduler.h"

namespace dockyard::scheduler_refs {

// Holds an agent's slot: placed on it, or running there.
inline bool IsActive(v1::StageState state) {
  return state == v1::STAGE_ASSIGNED || state == v1::STAGE_RUNNING;
}


inline Scheduler::AttemptKey Key(const v1::StageRef& ref) {
  return {ref.run_id(), ref.stage(), ref.attempt()};
}

inline v1::StageRef Ref(const Scheduler::AttemptKey& key) {
  v1::StageRef ref;
  ref.set_run_id(std::get<0>(key));
  ref.set_stage(std::get<1>(key));
  ref.set_attempt(std::get<2>(key));
  return ref;
}

inline v1::StageRef Ref(const std::string& run_id, const v1::StageInfo& info) {
  v1::StageRef ref;
  ref.set_run_id(run_id);
  ref.set_stage(info.name());
  ref.set_attempt(info.attempt());
  return ref;
}

}  // namespace dockyard::scheduler_refs
