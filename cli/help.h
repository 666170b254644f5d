// The CLI's manual: `dockyard --help` (commands, environment, exit codes) and
// `dockyard COMMAND --help` (what it does, its flags), written for people rather
// than generated from the flag library.
#pragma once

#include <string>

namespace dockyard {

std::string Manual();
// "" for an unknown command.
std::string CommandHelp(const std::string& command);

}  // namespace dockyard
