#include "common/flags_help.h"

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dockyard {

void ConfigureFlagsHelp(const std::string& program, const std::string& version) {
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) { return absl::EndsWith(file, "main.cc"); };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  config.version_string = [line = absl::StrCat(program, " ", version, "\n")] { return line; };
  absl::SetFlagsUsageConfig(config);
}

}  // namespace dockyard
