// The shared state engine: the controller's records in a PostgreSQL database
// (libpqxx), for controllers that outgrow one box or run with a standby. Same
// contract as the SQLite store; the schema is versioned and migrated at open under an
// advisory lock, so controllers starting together migrate once. Thread-safe (one
// connection, calls take turns); a broken connection is reopened by the next call.
// Stage logs live in the same database (PostgresLogBackend).
#pragma once

#include <memory>
#include <string>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "controller/leader_lease.h"
#include "controller/postgres_connection.h"
#include "controller/state_store.h"

namespace dockyard {

class PostgresStateStore : public StateStore {
 public:
  // The newest schema version this code migrates to; a database at a newer one is
  // refused (a newer controller wrote it).
  static int SchemaVersion();

  // Connects to `url` (postgresql://user@host:port/database[?params]) with
  // `password` ("": libpq's PGPASSFILE or ~/.pgpass) and migrates the schema.
  // INVALID_ARGUMENT for a URL carrying a password (it would show in `ps`);
  // UNAVAILABLE when the server cannot be reached or refuses the login. Errors name
  // the URL, never the password.
  static absl::StatusOr<std::unique_ptr<PostgresStateStore>> Open(const std::string& url,
                                                                  const std::string& password);
  ~PostgresStateStore() override;
  PostgresStateStore(const PostgresStateStore&) = delete;
  PostgresStateStore& operator=(const PostgresStateStore&) = delete;

  absl::Status Save(const std::vector<v1::RunRecord>& runs, const std::vector<v1::AgentRecord>& agents,
                    const std::vector<v1::Artifact>& artifacts = {},
                    const std::vector<v1::StageRecord>& stages = {}) override;
  absl::Status DeleteRuns(const std::vector<std::string>& run_ids) override;
  absl::StatusOr<Contents> Load() override;
  // Waits for the lease (logging who leads meanwhile), then renews it on a thread of
  // its own every term/3; a renewal refused, or none that succeeded for a whole term,
  // is the lease lost.
  absl::Status Lead(const Leadership& leadership) override;
  std::string Describe() const override { return "state database " + url_; }
  std::unique_ptr<LogBackend> NewLogBackend(const std::string& dir, BlobStore* archive) override;

 protected:
  absl::Status PutIdentity(const std::string& kind, const std::string& key, const std::string& record) override;
  absl::Status DeleteIdentity(const std::string& kind, const std::string& key) override;

 private:
  PostgresStateStore(std::string url, std::string connect_string);
  absl::Status Migrate();

  // FAILED_PRECONDITION unless this controller leads: the first statement of every
  // writing transaction once Lead returned.
  absl::Status Fence(pqxx::work& tx);
  void KeepLease(Leadership leadership);

  const std::string url_;             // as given: no password
  const std::string connect_string_;  // with the password: never logged
  PostgresConnection connection_;
  // Set once by Lead, before any other thread writes; read by every write.
  std::string fence_holder_;
  std::atomic<int64_t> fence_epoch_{0};  // 0: no lease in use; -1: lost
  std::unique_ptr<PostgresConnection> lease_connection_;
  std::unique_ptr<LeaderLease> lease_;
  absl::Mutex lease_mu_;
  bool stopping_ ABSL_GUARDED_BY(lease_mu_) = false;
  std::thread keeper_;
};

}  // namespace dockyard
