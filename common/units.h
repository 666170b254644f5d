// Quantities people write in pipeline files and flags: sizes ("512M", "4GiB",
// "1048576") and CPU counts ("1.5"). K/M/G/T are binary (as Docker reads them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dockyard {

// Bytes. INVALID_ARGUMENT naming the text for anything else.
absl::StatusOr<int64_t> ParseByteSize(std::string_view text);
// "512 bytes", "3.4 MiB", "4.0 GiB": for people.
std::string FormatBytes(int64_t bytes);
// Thousandths of a CPU ("1.5" -> 1500). INVALID_ARGUMENT for anything else.
absl::StatusOr<int64_t> ParseMilliCpus(std::string_view text);

}  // namespace dockyard
