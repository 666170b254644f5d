// Names users choose that Dockyard turns into file, volume and certificate names
// (stages, caches, agents, tokens): one rule everywhere.
#pragma once

#include <string_view>

namespace dockyard {

// [A-Za-z0-9][A-Za-z0-9_.-]{0,127} and no "..".
bool IsSafeName(std::string_view name);

}  // namespace dockyard
