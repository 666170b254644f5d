// Client roles as people write them ("read", "submit", "admin") and as the wire
// carries them: one mapping for the CLI and the controller.
#pragma once

#include <string_view>

#include "dockyard/v1/run.pb.h"

namespace dockyard {

// "read" | "submit" | "admin"; "none" for anything else.
const char* RoleName(v1::Role role);
// The role named `name`; ROLE_UNSPECIFIED for anything else.
v1::Role ParseRole(std::string_view name);

}  // namespace dockyard
