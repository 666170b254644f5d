#include "common/names.h"

namespace dockyard {
namespace {

bool IsAsciiAlnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool IsSafeName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.find("..") != std::string_view::npos) return false;
  if (!IsAsciiAlnum(name[0])) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsEnvName(std::string_view name) {
  if (name.empty() || name.size() > 128 || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '_') return false;
  }
  return true;
}

}  // namespace dockyard
