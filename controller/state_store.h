// The controller's durable state: runs, agents and artifacts as protobuf records in
// one SQLite database (<data_dir>/state.db, WAL), so a restart — even after SIGKILL —
// resumes where the controller was. Thread-safe (one internal mutex); every call does
// blocking disk I/O.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/run.pb.h"
#include "dockyard/v1/state.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dockyard {

class StateStore {
 public:
  // The schema this code reads and writes; a database with another one is refused.
  static constexpr int kSchemaVersion = 2;

  // Opens (creating when absent) the database at `path`. DATA_LOSS for a file that
  // is not an SQLite database or is corrupt; FAILED_PRECONDITION for a database that
  // is not Dockyard's or has another schema version. Errors name the path.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Inserts or replaces the records, all in one transaction (all or nothing).
  absl::Status Save(const std::vector<v1::RunRecord>& runs, const std::vector<v1::AgentRecord>& agents,
                    const std::vector<v1::Artifact>& artifacts = {});
  // Inserts or replaces the artifact named (run_id, stage, name).
  absl::Status SaveArtifact(const v1::Artifact& artifact);
  // Identity: inserts or replaces by token id / enrolment token id / agent name.
  absl::Status SaveToken(const v1::TokenRecord& token);
  absl::Status SaveEnrolToken(const v1::EnrolTokenRecord& token);
  absl::Status SaveEnrolledAgent(const v1::EnrolledAgentRecord& agent);
  // Secrets (encrypted by SecretStore before they get here): by name.
  absl::Status SaveSecret(const v1::SecretRecord& secret);
  absl::Status DeleteSecret(const std::string& name);

  struct Contents {
    std::vector<v1::RunRecord> runs;        // by id
    std::vector<v1::AgentRecord> agents;    // by name
    std::vector<v1::Artifact> artifacts;    // by run, then in the order first saved
    std::vector<v1::TokenRecord> tokens;    // in the order first saved
    std::vector<v1::EnrolTokenRecord> enrol_tokens;
    std::vector<v1::EnrolledAgentRecord> enrolled_agents;
    std::vector<v1::SecretRecord> secrets;
  };
  // Everything saved. DATA_LOSS when a record does not parse.
  absl::StatusOr<Contents> Load();

  const std::string& path() const { return path_; }

 private:
  StateStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::Status Init() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadIdentity(Contents& contents) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Prepare(const char* sql, sqlite3_stmt** stmt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Binds text `key`, optional text `key2` and blob `record`, steps, resets.
  absl::Status Upsert(sqlite3_stmt* stmt, const std::string& key, const std::string* key2,
                      const std::string& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  sqlite3_stmt* put_run_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_agent_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_artifact_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* put_identity_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* delete_identity_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* begin_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* commit_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* rollback_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace dockyard
