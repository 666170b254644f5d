#include "common/units.h"

#include <cctype>
#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dockyard {

absl::StatusOr<int64_t> ParseByteSize(std::string_view text) {
  std::string t(text);
  size_t end = 0;
  while (end < t.size() && (std::isdigit(static_cast<unsigned char>(t[end])) || t[end] == '.')) ++end;
  std::string unit = t.substr(end);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();   // "MB", "MiB" -> "M", "Mi"
  if (unit.size() == 2 && unit.back() == 'I') unit.pop_back();  // "Mi" -> "M"
  double number = 0;
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  if (unit == "K") shift = 10;
  if (unit == "M") shift = 20;
  if (unit == "G") shift = 30;
  if (unit == "T") shift = 40;
  if (end == 0 || shift < 0 || !absl::SimpleAtod(t.substr(0, end), &number) || number <= 0 ||
      number * std::ldexp(1.0, shift) > 9.2e18) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(text), "\" is not a size (a positive number with K, M, G or T, e.g. 512M or 4G)"));
  }
  return static_cast<int64_t>(number * std::ldexp(1.0, shift));
}

absl::StatusOr<int64_t> ParseMilliCpus(std::string_view text) {
  double cpus = 0;
  if (!absl::SimpleAtod(std::string(text), &cpus) || cpus < 0.01 || cpus > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text), "\" is not a CPU count (e.g. 1, 0.5, 2.5)"));
  }
  return static_cast<int64_t>(std::llround(cpus * 1000));
}

std::string FormatBytes(int64_t bytes) {
  if (bytes >= (int64_t{1} << 30)) return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / 1073741824.0);
  if (bytes >= (1 << 20)) return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / 1048576.0);
  if (bytes >= (1 << 10)) return absl::StrFormat("%.1f KiB", static_cast<double>(bytes) / 1024.0);
  return absl::StrCat(bytes, " bytes");
}

}  // namespace dockyard
