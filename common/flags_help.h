// `--help` for our binaries: Abseil shows only flags defined in files named after
// the program; ours live in each binary's main.cc.
#pragma once

namespace dockyard {

// Call before absl::ParseCommandLine.
void ShowMainFlagsInHelp();

}  // namespace dockyard
