// When a stage or a run is over, in one place for the controller and the CLI.
#pragma once

#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

// Succeeded, failed, skipped, cancelled, timed out or lost: nothing more happens.
inline bool IsTerminal(v1::StageState state) {
  switch (state) {
    case v1::STAGE_SUCCEEDED:
    case v1::STAGE_FAILED:
    case v1::STAGE_SKIPPED:
    case v1::STAGE_CANCELLED:
    case v1::STAGE_TIMED_OUT:
    case v1::STAGE_LOST:
      return true;
    default:
      return false;
  }
}

inline bool IsFinished(v1::RunState state) {
  return state == v1::RUN_SUCCEEDED || state == v1::RUN_FAILED || state == v1::RUN_CANCELLED;
}

}  // namespace dockyard
