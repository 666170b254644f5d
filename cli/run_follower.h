// Following a run in the CLI: every stage's live log with a stage prefix, each
// stage's state changes in the order they happened, then the result and the
// artifacts. Shared by `dockyard run` (after submitting or re-attaching) and
// `dockyard watch RUN`.
#pragma once

#include <ostream>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"

namespace dockyard {

// Follows `run_id` to its end from the start of every log; returns the exit code.
int FollowRun(DockyardClient& client, const std::string& run_id, const RunCommandOptions& options,
              std::ostream& out, std::ostream& err);

}  // namespace dockyard
