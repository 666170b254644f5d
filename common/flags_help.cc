#include "common/flags_help.h"

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace dockyard {

void ShowMainFlagsInHelp() {
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) { return absl::EndsWith(file, "main.cc"); };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace dockyard
