// The embedded state engine: one SQLite database (<data_dir>/state.db, WAL) that a
// single controller owns. Thread-safe (one internal mutex).
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controller/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dockyard {

class SqliteStateStore : public StateStore {
 public:
  // The schema this code reads and writes; older ones are migrated at open, a newer
  // one is refused.
  static constexpr int kSchemaVersion = 3;

  // Opens (creating when absent) the database at `path`. DATA_LOSS for a file that
  // is not an SQLite database or is corrupt; FAILED_PRECONDITION for a database that
  // is not Dockyard's or has another schema version. Errors name the path.
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(const std::string& path);
  ~SqliteStateStore() override;
  SqliteStateStore(const SqliteStateStore&) = delete;
  SqliteStateStore& operator=(const SqliteStateStore&) = delete;

  absl::Status Save(const std::vector<v1::RunRecord>& runs, const std::vector<v1::AgentRecord>& agents,
                    const std::vector<v1::Artifact>& artifacts = {},
                    const std::vector<v1::StageRecord>& stages = {}) override;
  absl::Status DeleteRuns(const std::vector<std::string>& run_ids) override;
  absl::StatusOr<Contents> Load() override;
  std::string Describe() const override { return "state database " + path_; }
  std::unique_ptr<LogBackend> NewLogBackend(const std::string& dir, BlobStore* archive) override;

  const std::string& path() const { return path_; }

 protected:
  absl::Status PutIdentity(const std::string& kind, const std::string& key, const std::string& record) override;
  absl::Status DeleteIdentity(const std::string& kind, const std::string& key) override;

 private:
  SqliteStateStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::Status Init() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadIdentity(Contents& contents) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Prepare(const char* sql, sqlite3_stmt** stmt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Binds text `key`, optional text `key2` and blob `record`, steps, resets.
  absl::Status Upsert(sqlite3_stmt* stmt, const std::string& key, const std::string* key2,
                      const std::string& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Binds text `run_id`, `number`, and when given `version` and blob `record`; steps, resets.
  absl::Status Step(sqlite3_stmt* stmt, const std::string& run_id, int64_t number, const int64_t* version,
                    const std::string* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  sqlite3_stmt* put_run_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* drop_stages_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_stage_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_agent_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_artifact_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_identity_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* delete_identity_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* begin_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* commit_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* rollback_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace dockyard
