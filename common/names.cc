#include "common/names.h"

namespace dockyard {

bool IsSafeName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.find("..") != std::string_view::npos) return false;
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace dockyard
