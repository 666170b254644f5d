#include "controller/postgres_connection.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dockyard {

absl::Status PostgresConnection::Failed(const std::string& what, const char* error, bool unavailable) const {
  const std::string message = absl::StrCat(describe_, ": ", what, ": ", absl::StripAsciiWhitespace(error));
  return unavailable ? absl::UnavailableError(message) : absl::InternalError(message);
}

}  // namespace dockyard
