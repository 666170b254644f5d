// Test support: a real PostgreSQL server on 127.0.0.1 for the scale-out tests, and a
// fresh database per test on it. One server serves a whole ctest run: the
// `postgres_for_tests` program starts it as a ctest fixture and tells the tests
// where it is through DOCKYARD_TEST_SCALEOUT (its directory + /postgres).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace dockyard::testing {

// Starts a server in `dir` (created; must not exist or be empty): initdb and pg_ctl
// as the unprivileged user `nobody` when run as root (PostgreSQL refuses root), on
// a free loopback port, with a password login for the user "dockyard". Writes
// dir/admin_url and dir/password. Blocks until the server accepts connections.
absl::Status StartPostgres(const std::string& dir);
// Stops the server in `dir` (fast shutdown) and removes `dir`.
absl::Status StopPostgres(const std::string& dir);

struct PostgresDatabase {
  std::string url;            // postgresql://dockyard@127.0.0.1:PORT/NAME (no password)
  std::string password_file;  // for --state_password_file
};
// The server under DOCKYARD_TEST_SCALEOUT, or "" when this run has none.
std::string PostgresForTests();
// A new empty database on the server in `dir`, named after `hint` (made unique).
absl::StatusOr<PostgresDatabase> CreateDatabase(const std::string& dir, const std::string& hint);

}  // namespace dockyard::testing
