// Which finished runs retention removes: those that finished longer ago than
// `max_age`, and beyond the newest `max_runs` finished ones. A run in progress is
// never chosen, nor the run with the highest id (its number seeds the next run's, so
// ids are never handed out twice).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "controller/scheduler.h"

namespace dockyard {

struct RetentionPolicy {
  absl::Duration max_age = absl::ZeroDuration();  // zero: no age limit
  int64_t max_runs = 0;                           // zero: no count limit
};

std::vector<std::string> ExpiredRuns(const std::vector<Scheduler::RunSummary>& runs, const RetentionPolicy& policy,
                                     absl::Time now);

}  // namespace dockyard
