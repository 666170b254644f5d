#include "controller/placement.h"

#include "absl/strings/str_cat.h"

namespace dockyard {
namespace {

// The emptiest agent spreads the load.
const Candidate* Emptiest(const std::vector<Candidate>& candidates) {
  const Candidate* best = nullptr;
  for (const Candidate& c : candidates) {
    if (best == nullptr || c.free_slots > best->free_slots) best = &c;
  }
  return best;
}

}  // namespace

Placement Place(const std::vector<Candidate>& candidates, const std::optional<CacheHolder>& holder,
                absl::Duration waited, absl::Duration cache_wait) {
  Placement placement;
  if (!holder) {
    if (const Candidate* c = Emptiest(candidates)) placement.agent = c->name;
    return placement;
  }
  for (const Candidate& c : candidates) {
    if (c.name == holder->name) {
      placement.agent = c.name;
      placement.why = absl::StrCat("on agent ", c.name, ", which holds this run's cache");
      return placement;
    }
  }
  std::string reason;
  if (!holder->connected) {
    reason = "is not connected";
  } else if (!holder->eligible) {
    reason = "cannot take this stage (labels, or draining)";
  } else if (waited < cache_wait) {
    placement.why = absl::StrCat("waiting up to ", absl::FormatDuration(cache_wait), " for a free slot on agent ",
                                 holder->name, ", which holds this run's cache (--cache_wait)");
    return placement;
  } else {
    reason = absl::StrCat("was busy for ", absl::FormatDuration(cache_wait));
  }
  if (const Candidate* c = Emptiest(candidates)) {
    placement.agent = c->name;
    placement.moved = true;
    placement.why = absl::StrCat("on agent ", c->name, ", which restores the cache from its snapshot (agent ",
                                 holder->name, ", which holds it, ", reason, ")");
  }
  return placement;
}

}  // namespace dockyard
