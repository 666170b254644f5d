// Which of several controllers sharing one PostgreSQL leads: one lease row held by one
// controller at a time, for a term it renews well before the end. The database's clock
// alone decides expiry (controllers' clocks need not agree), and each new holder gets a
// higher epoch, so a paused old leader that wakes finds out at its next renewal that it
// must step down. Not thread-safe: one owner calls it (the controller's lease loop).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/postgres_connection.h"

namespace dockyard {

class LeaderLease {
 public:
  // `holder` must be unique to this process (e.g. host, pid and start time);
  // `address` is what clients dial to reach it. `connection` must outlive the lease.
  LeaderLease(PostgresConnection* connection, std::string holder, std::string address, absl::Duration term);

  // Takes the lease when nobody holds it or the holder's term ran out: true when this
  // controller now leads (epoch() tells which term), false when another leads.
  absl::StatusOr<bool> TryAcquire();
  // Extends the term from now. FAILED_PRECONDITION when the lease is no longer ours
  // (it expired, or another controller took it): stop leading at once.
  absl::Status Renew();
  // Ends our term now (a clean shutdown): a standby need not wait for it to run out.
  absl::Status Release();
  // The address of the controller holding an unexpired lease; "" when none does.
  absl::StatusOr<std::string> Leader();

  int64_t epoch() const { return epoch_; }

  // The fence of a writing transaction: OK when `holder` still holds the lease of
  // term `epoch` (0: no lease in use); FAILED_PRECONDITION naming `what` otherwise. It
  // locks the lease row for share, so a takeover waits for the transaction to end.
  static absl::Status Fence(pqxx::work& tx, const std::string& holder, int64_t epoch, const std::string& what);
  const std::string& holder() const { return holder_; }

 private:
  PostgresConnection* const connection_;
  const std::string holder_;
  const std::string address_;
  const int64_t term_ms_;
  int64_t epoch_ = 0;  // 0: not held
};

}  // namespace dockyard
