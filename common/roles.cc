#include "common/roles.h"

namespace dockyard {

const char* RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_READ: return "read";
    case v1::ROLE_SUBMIT: return "submit";
    case v1::ROLE_ADMIN: return "admin";
    default: return "none";
  }
}

v1::Role ParseRole(std::string_view name) {
  if (name == "read") return v1::ROLE_READ;
  if (name == "submit") return v1::ROLE_SUBMIT;
  if (name == "admin") return v1::ROLE_ADMIN;
  return v1::ROLE_UNSPECIFIED;
}

}  // namespace dockyard
