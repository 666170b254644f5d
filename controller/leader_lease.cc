#include "controller/leader_lease.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace dockyard {

LeaderLease::LeaderLease(PostgresConnection* connection, std::string holder, std::string address,
                         absl::Duration term)
    : connection_(connection),
      holder_(std::move(holder)),
      address_(std::move(address)),
      term_ms_(absl::ToInt64Milliseconds(term)) {}

absl::Status LeaderLease::Fence(pqxx::work& tx, const std::string& holder, int64_t epoch, const std::string& what) {
  if (epoch == 0) return absl::OkStatus();
  if (epoch < 0 || tx.exec_params("SELECT 1 FROM leader WHERE id = 1 AND holder = $1 AND epoch = $2 "
                                  "AND expires_at > now() FOR SHARE",
                                  holder, epoch)
                       .empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": this controller no longer holds the leader lease; nothing is written"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> LeaderLease::TryAcquire() {
  int64_t epoch = 0;
  RETURN_IF_ERROR(connection_->Run("cannot take the leader lease", [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    // One row: inserted by the first controller ever, taken over only when its term ran
    // out by the database's clock (or by its own holder, restarting within the term).
    const pqxx::result taken = tx.exec_params(
        "INSERT INTO leader (id, holder, address, epoch, expires_at) "
        "VALUES (1, $1, $2, 1, now() + $3 * interval '1 millisecond') "
        "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, address = excluded.address, "
        "  epoch = leader.epoch + 1, expires_at = excluded.expires_at "
        "WHERE leader.expires_at < now() OR leader.holder = excluded.holder "
        "RETURNING epoch",
        holder_, address_, term_ms_);
    tx.commit();
    if (!taken.empty()) epoch = taken[0][0].as<int64_t>();
    return absl::OkStatus();
  }));
  epoch_ = epoch;
  return epoch_ != 0;
}

absl::Status LeaderLease::Renew() {
  if (epoch_ == 0) return absl::FailedPreconditionError("this controller does not hold the leader lease");
  bool renewed = false;
  RETURN_IF_ERROR(connection_->Run("cannot renew the leader lease", [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    renewed = !tx.exec_params("UPDATE leader SET expires_at = now() + $3 * interval '1 millisecond' "
                              "WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > now() RETURNING 1",
                              holder_, epoch_, term_ms_)
                   .empty();
    tx.commit();
    return absl::OkStatus();
  }));
  if (!renewed) {
    const int64_t lost = epoch_;
    epoch_ = 0;
    return absl::FailedPreconditionError(
        absl::StrCat("the leader lease of term ", lost, " ran out or was taken over: stepping down"));
  }
  return absl::OkStatus();
}

absl::Status LeaderLease::Release() {
  if (epoch_ <= 0) return absl::OkStatus();
  const int64_t epoch = epoch_;
  epoch_ = 0;
  return connection_->Run("cannot release the leader lease", [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    tx.exec_params("UPDATE leader SET expires_at = now() WHERE id = 1 AND holder = $1 AND epoch = $2", holder_, epoch);
    tx.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> LeaderLease::Leader() {
  std::string address;
  RETURN_IF_ERROR(connection_->Run("cannot read the leader lease", [&](pqxx::connection& connection) {
    pqxx::read_transaction tx(connection);
    const pqxx::result row = tx.exec("SELECT address FROM leader WHERE id = 1 AND expires_at > now()");
    if (!row.empty()) address = row[0][0].as<std::string>();
    return absl::OkStatus();
  }));
  return address;
}

}  // namespace dockyard
