#include "controller/sqlite_state_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/retrier.h"
#include "common/status_macros.h"
#include "controller/file_log_backend.h"

namespace dockyard {
namespace {

// An error naming the database, what we were doing and SQLite's own words.
absl::Status SqlError(const std::string& path, sqlite3* db, const std::string& what, int rc) {
  const std::string message =
      absl::StrCat("state database ", path, ": ", what, ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

// Finalizes a statement prepared for one call.
struct StmtCloser {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using OwnedStmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;

std::string ColumnBytes(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

constexpr const char* kCreateSchema = R"sql(
  CREATE TABLE schema_version (version INTEGER NOT NULL);
  CREATE TABLE runs (id TEXT PRIMARY KEY, record BLOB NOT NULL);
  CREATE TABLE agents (name TEXT PRIMARY KEY, record BLOB NOT NULL);
  CREATE TABLE artifacts (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
  );
)sql";

// Version 2: client tokens, enrolment tokens and enrolled agents (hashes and
// fingerprints only, never a secret), keyed by (kind, key). Pipeline secrets live
// here too, only ever encrypted (kind "secret").
constexpr const char* kAddIdentity = R"sql(
  CREATE TABLE identity (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (kind, key)
  );
)sql";

// Version 3: a stage that changed alone is saved alone (StageRecord), beside its
// run's record; `version` is the run version it carries.
constexpr const char* kAddStages = R"sql(
  CREATE TABLE stages (
    run_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    version INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (run_id, idx)
  );
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("state database ", path, ": cannot create ", parent.string(),
                                            ": ", ec.message()));
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st = SqlError(path, db, "cannot open", rc);
    sqlite3_close_v2(db);
    return st;
  }
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(path, db));
  absl::MutexLock lock(&store->mu_);
  RETURN_IF_ERROR(store->Init());
  return store;
}

SqliteStateStore::~SqliteStateStore() {
  absl::MutexLock lock(&mu_);
  for (sqlite3_stmt* stmt : {put_run_, drop_stages_, put_stage_, put_agent_, put_artifact_, put_identity_,
                             delete_identity_, begin_, commit_, rollback_}) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db_);
}

absl::Status SqliteStateStore::Exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(path_, db_, sql, rc);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Prepare(const char* sql, sqlite3_stmt** stmt) {
  const int rc = sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr);
  if (rc != SQLITE_OK) return SqlError(path_, db_, absl::StrCat("cannot prepare \"", sql, "\""), rc);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Init() {
  // Another process (an operator's sqlite3 shell, a second controller by mistake)
  // may hold a lock for a moment: wait rather than fail.
  sqlite3_busy_timeout(db_, 5000);
  // WAL: a commit is one append to the log, readers never block the writer. NORMAL
  // syncs at checkpoints only: a power cut may lose the last commits, a crashed
  // process never does (what is in the OS's page cache survives SIGKILL).
  // Changing the journal mode takes an exclusive lock for which SQLite does not call
  // the busy handler: two controllers opening one new database at once need the retry.
  RetryPolicy policy;
  policy.max_tries = 100;
  policy.patience = absl::Seconds(5);
  policy.first_backoff = absl::Milliseconds(5);
  policy.max_backoff = absl::Milliseconds(100);
  RETURN_IF_ERROR(Retrier(policy).RunPlain([&] { return Exec("PRAGMA journal_mode=WAL"); }));
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  if (absl::Status st = CheckSchema(); !st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  RETURN_IF_ERROR(Exec("COMMIT"));

  RETURN_IF_ERROR(Prepare("INSERT INTO runs (id, record) VALUES (?1, ?2) "
                          "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                          &put_run_));
  // A run's record holds all its stages: the stage records it is newer than go.
  RETURN_IF_ERROR(Prepare("DELETE FROM stages WHERE run_id = ?1 AND version <= ?2", &drop_stages_));
  RETURN_IF_ERROR(Prepare("INSERT INTO stages (run_id, idx, version, record) VALUES (?1, ?2, ?3, ?4) "
                          "ON CONFLICT (run_id, idx) DO UPDATE SET version = excluded.version, "
                          "record = excluded.record WHERE excluded.version > stages.version",
                          &put_stage_));
  RETURN_IF_ERROR(Prepare("INSERT INTO agents (name, record) VALUES (?1, ?2) "
                          "ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                          &put_agent_));
  RETURN_IF_ERROR(Prepare("INSERT INTO artifacts (run_id, name, record) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (run_id, name) DO UPDATE SET record = excluded.record",
                          &put_artifact_));
  RETURN_IF_ERROR(Prepare("INSERT INTO identity (kind, key, record) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record",
                          &put_identity_));
  RETURN_IF_ERROR(Prepare("DELETE FROM identity WHERE kind = ?1 AND key = ?2", &delete_identity_));
  RETURN_IF_ERROR(Prepare("BEGIN IMMEDIATE", &begin_));
  RETURN_IF_ERROR(Prepare("COMMIT", &commit_));
  RETURN_IF_ERROR(Prepare("ROLLBACK", &rollback_));
  return absl::OkStatus();
}

absl::Status SqliteStateStore::CheckSchema() {
  std::set<std::string> tables;
  {
    sqlite3_stmt* raw = nullptr;
    RETURN_IF_ERROR(Prepare("SELECT name FROM sqlite_master WHERE type = 'table'", &raw));
    OwnedStmt stmt(raw);
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) tables.insert(ColumnBytes(stmt.get(), 0));
    if (rc != SQLITE_DONE) return SqlError(path_, db_, "cannot list tables", rc);
  }
  if (tables.empty()) {  // a new database
    RETURN_IF_ERROR(Exec(kCreateSchema));
    RETURN_IF_ERROR(Exec(kAddIdentity));
    RETURN_IF_ERROR(Exec(kAddStages));
    RETURN_IF_ERROR(Exec(absl::StrCat("INSERT INTO schema_version (version) VALUES (", kSchemaVersion, ")").c_str()));
    return absl::OkStatus();
  }
  if (tables.count("schema_version") == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state database ", path_, " is not a Dockyard state database (it has tables but no schema_version)"));
  }
  sqlite3_stmt* raw = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT version FROM schema_version", &raw));
  OwnedStmt stmt(raw);
  std::vector<int64_t> versions;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) versions.push_back(sqlite3_column_int64(stmt.get(), 0));
  if (rc != SQLITE_DONE) return SqlError(path_, db_, "cannot read schema_version", rc);
  if (versions.size() != 1) {
    return absl::FailedPreconditionError(absl::StrCat("state database ", path_, " has ", versions.size(),
                                                      " schema_version rows; expected exactly one"));
  }
  if (versions[0] == 1) {  // before identity: add it, keep everything else
    RETURN_IF_ERROR(Exec(kAddIdentity));
    RETURN_IF_ERROR(Exec("UPDATE schema_version SET version = 2"));
    versions[0] = 2;
  }
  if (versions[0] == 2) {  // before stage records: add them, keep everything else
    RETURN_IF_ERROR(Exec(kAddStages));
    RETURN_IF_ERROR(Exec("UPDATE schema_version SET version = 3"));
    versions[0] = 3;
  }
  if (versions[0] != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("state database ", path_, " has schema version ", versions[0],
                                                      "; this controller reads version ", kSchemaVersion));
  }
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Upsert(sqlite3_stmt* stmt, const std::string& key, const std::string* key2,
                                const std::string& record) {
  int index = 1;
  sqlite3_bind_text(stmt, index++, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  if (key2 != nullptr) sqlite3_bind_text(stmt, index++, key2->data(), static_cast<int>(key2->size()), SQLITE_STATIC);
  sqlite3_bind_blob(stmt, index, record.data(), static_cast<int>(record.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc != SQLITE_DONE) return SqlError(path_, db_, absl::StrCat("cannot save ", key), rc);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Save(const std::vector<v1::RunRecord>& runs, const std::vector<v1::AgentRecord>& agents,
                                    const std::vector<v1::Artifact>& artifacts,
                                    const std::vector<v1::StageRecord>& stages) {
  if (runs.empty() && agents.empty() && artifacts.empty() && stages.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  int rc = sqlite3_step(begin_);
  sqlite3_reset(begin_);
  if (rc != SQLITE_DONE) return SqlError(path_, db_, "cannot begin a transaction", rc);
  auto save_all = [&]() -> absl::Status {
    for (const v1::RunRecord& run : runs) {
      RETURN_IF_ERROR(Upsert(put_run_, run.run().id(), nullptr, run.SerializeAsString()));
      RETURN_IF_ERROR(Step(drop_stages_, run.run().id(), run.version(), nullptr, nullptr));
    }
    for (const v1::StageRecord& stage : stages) {
      const std::string record = stage.SerializeAsString();
      const int64_t version = stage.run_version();
      RETURN_IF_ERROR(Step(put_stage_, stage.run_id(), stage.index(), &version, &record));
    }
    for (const v1::AgentRecord& agent : agents) {
      RETURN_IF_ERROR(Upsert(put_agent_, agent.registration().name(), nullptr, agent.SerializeAsString()));
    }
    for (const v1::Artifact& artifact : artifacts) {
      const std::string key = ArtifactKey(artifact);
      RETURN_IF_ERROR(Upsert(put_artifact_, artifact.run_id(), &key, artifact.SerializeAsString()));
    }
    return absl::OkStatus();
  };
  absl::Status st = save_all();
  if (st.ok()) {
    rc = sqlite3_step(commit_);
    sqlite3_reset(commit_);
    if (rc == SQLITE_DONE) return absl::OkStatus();
    st = SqlError(path_, db_, "cannot commit", rc);
  }
  // Nothing of a failed save stays: the next save writes these records again.
  if (sqlite3_get_autocommit(db_) == 0) {
    sqlite3_step(rollback_);
    sqlite3_reset(rollback_);
  }
  return st;
}

absl::Status SqliteStateStore::Step(sqlite3_stmt* stmt, const std::string& run_id, int64_t number,
                                    const int64_t* version, const std::string* record) {
  sqlite3_bind_text(stmt, 1, run_id.data(), static_cast<int>(run_id.size()), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, number);
  if (version != nullptr) sqlite3_bind_int64(stmt, 3, *version);
  if (record != nullptr) sqlite3_bind_blob(stmt, 4, record->data(), static_cast<int>(record->size()), SQLITE_STATIC);
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc != SQLITE_DONE) return SqlError(path_, db_, absl::StrCat("cannot save the stages of run ", run_id), rc);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::PutIdentity(const std::string& kind, const std::string& key,
                                          const std::string& record) {
  absl::MutexLock lock(&mu_);
  return Upsert(put_identity_, kind, &key, record);
}

absl::Status SqliteStateStore::DeleteIdentity(const std::string& kind, const std::string& key) {
  absl::MutexLock lock(&mu_);
  sqlite3_bind_text(delete_identity_, 1, kind.data(), static_cast<int>(kind.size()), SQLITE_STATIC);
  sqlite3_bind_text(delete_identity_, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(delete_identity_);
  sqlite3_reset(delete_identity_);
  sqlite3_clear_bindings(delete_identity_);
  if (rc != SQLITE_DONE) return SqlError(path_, db_, absl::StrCat("cannot delete ", kind, " ", key), rc);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::LoadIdentity(Contents& contents) {
  sqlite3_stmt* raw = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT kind, key, record FROM identity ORDER BY kind, rowid", &raw));
  OwnedStmt stmt(raw);
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    RETURN_IF_ERROR(AddIdentity(ColumnBytes(stmt.get(), 0), ColumnBytes(stmt.get(), 1), ColumnBytes(stmt.get(), 2),
                                contents));
  }
  if (rc != SQLITE_DONE) return SqlError(path_, db_, "cannot read identity records", rc);
  return absl::OkStatus();
}

absl::StatusOr<SqliteStateStore::Contents> SqliteStateStore::Load() {
  absl::MutexLock lock(&mu_);
  Contents contents;
  // One read transaction: the three tables as of one moment.
  RETURN_IF_ERROR(Exec("BEGIN"));
  auto read_table = [&](const char* sql, const char* what, auto add) -> absl::Status {
    sqlite3_stmt* raw = nullptr;
    RETURN_IF_ERROR(Prepare(sql, &raw));
    OwnedStmt stmt(raw);
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      const std::string key = ColumnBytes(stmt.get(), 0);
      if (!add(ColumnBytes(stmt.get(), 1))) {
        return absl::DataLossError(absl::StrCat("state database ", path_, ": the record of ", what, " \"", key,
                                                "\" does not parse"));
      }
    }
    if (rc != SQLITE_DONE) return SqlError(path_, db_, absl::StrCat("cannot read ", what, "s"), rc);
    return absl::OkStatus();
  };
  absl::Status st = read_table("SELECT id, record FROM runs ORDER BY CAST(id AS INTEGER), id", "run",
                               [&](const std::string& bytes) {
                                 return contents.runs.emplace_back().ParseFromString(bytes);
                               });
  std::vector<v1::StageRecord> stages;
  if (st.ok()) {
    st = read_table("SELECT run_id || '/' || idx, record FROM stages", "stage", [&](const std::string& bytes) {
      return stages.emplace_back().ParseFromString(bytes);
    });
  }
  if (st.ok()) ApplyStageRecords(stages, contents.runs);
  if (st.ok()) {
    st = read_table("SELECT name, record FROM agents ORDER BY name", "agent", [&](const std::string& bytes) {
      return contents.agents.emplace_back().ParseFromString(bytes);
    });
  }
  if (st.ok()) {
    st = read_table("SELECT run_id || '/' || name, record FROM artifacts ORDER BY CAST(run_id AS INTEGER), rowid",
                    "artifact", [&](const std::string& bytes) {
                      return contents.artifacts.emplace_back().ParseFromString(bytes);
                    });
  }
  if (st.ok()) st = LoadIdentity(contents);
  (void)Exec("COMMIT");
  if (!st.ok()) return st;
  return contents;
}

absl::Status SqliteStateStore::DeleteRuns(const std::vector<std::string>& run_ids) {
  if (run_ids.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto delete_all = [&]() -> absl::Status {
    for (const char* sql : {"DELETE FROM runs WHERE id = ?1", "DELETE FROM stages WHERE run_id = ?1",
                            "DELETE FROM artifacts WHERE run_id = ?1"}) {
      sqlite3_stmt* raw = nullptr;
      RETURN_IF_ERROR(Prepare(sql, &raw));
      OwnedStmt stmt(raw);
      for (const std::string& id : run_ids) {
        sqlite3_bind_text(stmt.get(), 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
        const int rc = sqlite3_step(stmt.get());
        sqlite3_reset(stmt.get());
        if (rc != SQLITE_DONE) return SqlError(path_, db_, absl::StrCat("cannot delete run ", id), rc);
      }
    }
    return absl::OkStatus();
  };
  absl::Status st = delete_all();
  if (st.ok()) return Exec("COMMIT");
  (void)Exec("ROLLBACK");
  return st;
}

std::unique_ptr<LogBackend> SqliteStateStore::NewLogBackend(const std::string& dir, BlobStore*) {
  return std::make_unique<FileLogBackend>(dir);
}

}  // namespace dockyard
