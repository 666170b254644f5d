// `--help` and `--version` for our binaries: Abseil shows only flags defined in files
// named after the program (ours live in each binary's main.cc), and its `--version`
// prints a build note instead of the version.
#pragma once

#include <string>

namespace dockyard {

// Call before absl::ParseCommandLine. `--version` then prints "PROGRAM VERSION".
void ConfigureFlagsHelp(const std::string& program, const std::string& version);

}  // namespace dockyard
