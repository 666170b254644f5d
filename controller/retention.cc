#include "controller/retention.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"

namespace dockyard {
namespace {

int64_t Number(const std::string& id) {
  int64_t n = 0;
  return absl::SimpleAtoi(id, &n) ? n : 0;
}

}  // namespace

std::vector<std::string> ExpiredRuns(const std::vector<Scheduler::RunSummary>& runs, const RetentionPolicy& policy,
                                     absl::Time now) {
  std::vector<const Scheduler::RunSummary*> finished;
  int64_t newest = -1;
  for (const Scheduler::RunSummary& run : runs) {
    newest = std::max(newest, Number(run.id));
    if (run.finished) finished.push_back(&run);
  }
  // Newest first: the count limit keeps the head of this list.
  std::sort(finished.begin(), finished.end(), [](const auto* a, const auto* b) {
    return a->finished_at != b->finished_at ? a->finished_at > b->finished_at : Number(a->id) > Number(b->id);
  });
  std::set<std::string> expired;
  for (size_t i = 0; i < finished.size(); ++i) {
    const Scheduler::RunSummary& run = *finished[i];
    if (Number(run.id) == newest) continue;
    const bool too_old = policy.max_age > absl::ZeroDuration() && now - run.finished_at > policy.max_age;
    const bool too_many = policy.max_runs > 0 && static_cast<int64_t>(i) >= policy.max_runs;
    if (too_old || too_many) expired.insert(run.id);
  }
  std::vector<std::string> out(expired.begin(), expired.end());
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return Number(a) < Number(b); });
  return out;
}

}  // namespace dockyard
