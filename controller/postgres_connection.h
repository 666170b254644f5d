// One PostgreSQL connection (libpqxx) for one user at a time: opened on first use,
// reopened after it broke, and every libpqxx exception turned into a status naming
// the database — never the password. Thread-safe (calls take turns).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <pqxx/pqxx>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace dockyard {

class PostgresConnection {
 public:
  // `describe` names the database in errors ("state database postgresql://…");
  // `prepare` declares prepared statements on each new connection.
  PostgresConnection(std::string connect_string, std::string describe,
                     std::function<void(pqxx::connection&)> prepare = nullptr)
      : connect_string_(std::move(connect_string)), describe_(std::move(describe)), prepare_(std::move(prepare)) {}

  // Runs `body(connection)` (returning absl::Status) on the open connection.
  // UNAVAILABLE when the server cannot be reached or the connection broke (the
  // next call reconnects), INTERNAL for an SQL error; `what` says what failed.
  template <typename Body>
  absl::Status Run(const std::string& what, Body&& body) {
    absl::MutexLock lock(&mu_);
    if (connection_ == nullptr || !connection_->is_open()) {
      try {
        connection_.reset();
        auto fresh = std::make_unique<pqxx::connection>(connect_string_);
        if (prepare_) prepare_(*fresh);
        connection_ = std::move(fresh);
      } catch (const std::exception& e) {
        return Failed("cannot connect", e.what(), /*unavailable=*/true);
      }
    }
    try {
      return body(*connection_);
    } catch (const pqxx::broken_connection& e) {
      connection_.reset();
      return Failed(what, e.what(), /*unavailable=*/true);
    } catch (const pqxx::in_doubt_error& e) {
      connection_.reset();
      return Failed(what, e.what(), /*unavailable=*/true);
    } catch (const std::exception& e) {
      return Failed(what, e.what(), /*unavailable=*/false);
    }
  }

  const std::string& describe() const { return describe_; }

 private:
  absl::Status Failed(const std::string& what, const char* error, bool unavailable) const;

  const std::string connect_string_;  // with the password: never logged
  const std::string describe_;
  const std::function<void(pqxx::connection&)> prepare_;
  absl::Mutex mu_;
  std::unique_ptr<pqxx::connection> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dockyard
