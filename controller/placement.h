// Which agent takes a ready stage. A stage whose cache a host holds goes there when
// it can; when that host is gone, draining or lacks the stage's labels, or stays
// busy longer than the cache wait, the stage goes to another eligible agent, which
// restores the cache from its snapshot. Nothing ever waits forever on a cache.
// Pure: the scheduler hands over what it knows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace dockyard {

// A connected agent that may take the stage and has a free slot.
struct Candidate {
  std::string name;
  int free_slots = 0;
};

// The agent that holds the snapshot the stage starts from.
struct CacheHolder {
  std::string name;
  bool connected = false;
  bool eligible = false;  // labels match and it is not draining
};

struct Placement {
  std::string agent;   // empty: the stage waits
  bool moved = false;  // placed away from the cache's holder
  std::string why;     // for the stage's status line
};

// `waited`: how long the stage has been ready.
Placement Place(const std::vector<Candidate>& candidates, const std::optional<CacheHolder>& holder,
                absl::Duration waited, absl::Duration cache_wait);

}  // namespace dockyard
