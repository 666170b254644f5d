// Names users choose that Dockyard turns into file, volume and certificate names
// (stages, caches, agents, tokens), and environment variable names: one rule each.
#pragma once

#include <string_view>

namespace dockyard {

// [A-Za-z0-9][A-Za-z0-9_.-]{0,127} and no "..".
bool IsSafeName(std::string_view name);

// An environment variable name (also what names a secret): [A-Za-z_][A-Za-z0-9_]*,
// at most 128 characters.
bool IsEnvName(std::string_view name);

}  // namespace dockyard
