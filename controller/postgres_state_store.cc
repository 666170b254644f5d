#include "controller/postgres_state_store.h"

#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/curl_util.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "controller/postgres_log_backend.h"

namespace dockyard {
namespace {

// Migration N brings the schema from version N to N+1; the list only grows.
const char* const kMigrations[] = {
    // 0 -> 1: the records of the SQLite schema version 2. `ordinal` keeps the order
    // records were first saved (an upsert leaves it alone, as SQLite's rowid).
    R"sql(
      CREATE TABLE runs (id TEXT PRIMARY KEY, record BYTEA NOT NULL);
      CREATE TABLE agents (name TEXT PRIMARY KEY, record BYTEA NOT NULL);
      CREATE TABLE artifacts (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        ordinal BIGSERIAL,
        record BYTEA NOT NULL,
        PRIMARY KEY (run_id, name)
      );
      CREATE TABLE identity (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        ordinal BIGSERIAL,
        record BYTEA NOT NULL,
        PRIMARY KEY (kind, key)
      );
    )sql",
    // 1 -> 2: stage logs. Live pieces by offset while an attempt runs; once it
    // settles, one blob in the blob store (by digest) and the pieces are dropped.
    R"sql(
      CREATE TABLE log_pieces (
        run_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        start_offset BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (run_id, stage, attempt, start_offset)
      );
      CREATE TABLE log_archives (
        run_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        size BIGINT NOT NULL,
        next_seq BIGINT NOT NULL,
        PRIMARY KEY (run_id, stage, attempt)
      );
    )sql",
    // 2 -> 3: the leader lease of controllers sharing this database (LeaderLease).
    R"sql(
      CREATE TABLE leader (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        address TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
    )sql",
    // 3 -> 4: a stage that changed alone is saved alone (StageRecord), beside its
    // run's record; `version` is the run version it carries.
    R"sql(
      CREATE TABLE stages (
        run_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        version BIGINT NOT NULL,
        record BYTEA NOT NULL,
        PRIMARY KEY (run_id, idx)
      );
    )sql",
};

// Any number: the advisory lock under which controllers starting together migrate.
constexpr int64_t kMigrationLock = 0x646f636b79617264;  // "dockyard"

// Run ids are numbers as text: numeric order, other ids first, as SQLite's CAST.
constexpr const char* kRunOrder = "(CASE WHEN id ~ '^[0-9]{1,18}$' THEN id::BIGINT END) NULLS FIRST, id";

// libpq's URI form takes parameters after '?': the password joins them there,
// percent-encoded, so it never needs to be in a flag value.
std::string WithPassword(const std::string& url, const std::string& password) {
  if (password.empty()) return url;
  return absl::StrCat(url, url.find('?') == std::string::npos ? "?" : "&", "password=", PercentEncode(password));
}

// True when the URL's user part carries a password (postgresql://user:secret@host).
bool HasInlinePassword(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t end = url.find_first_of("/?", start);
  const std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  const size_t at = authority.rfind('@');
  return at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos;
}

std::string Bytes(const pqxx::field& field) { return pqxx::binarystring(field).str(); }

}  // namespace

int PostgresStateStore::SchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

// The statements every save uses, on each new connection.
static void PrepareStatements(pqxx::connection& connection) {
  connection.prepare("put_run",
                     "INSERT INTO runs (id, record) VALUES ($1, $2) "
                     "ON CONFLICT (id) DO UPDATE SET record = excluded.record");
  // A run's record holds all its stages: the stage records it is newer than go.
  connection.prepare("drop_stages", "DELETE FROM stages WHERE run_id = $1 AND version <= $2");
  connection.prepare("put_stage",
                     "INSERT INTO stages (run_id, idx, version, record) VALUES ($1, $2, $3, $4) "
                     "ON CONFLICT (run_id, idx) DO UPDATE SET version = excluded.version, "
                     "record = excluded.record WHERE excluded.version > stages.version");
  connection.prepare("put_agent",
                     "INSERT INTO agents (name, record) VALUES ($1, $2) "
                     "ON CONFLICT (name) DO UPDATE SET record = excluded.record");
  connection.prepare("put_artifact",
                     "INSERT INTO artifacts (run_id, name, record) VALUES ($1, $2, $3) "
                     "ON CONFLICT (run_id, name) DO UPDATE SET record = excluded.record");
  connection.prepare("put_identity",
                     "INSERT INTO identity (kind, key, record) VALUES ($1, $2, $3) "
                     "ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record");
  connection.prepare("delete_identity", "DELETE FROM identity WHERE kind = $1 AND key = $2");
}

PostgresStateStore::PostgresStateStore(std::string url, std::string connect_string)
    : url_(std::move(url)),
      connect_string_(std::move(connect_string)),
      connection_(connect_string_, "state database " + url_, PrepareStatements) {}

PostgresStateStore::~PostgresStateStore() {
  {
    absl::MutexLock lock(&lease_mu_);
    stopping_ = true;
  }
  if (keeper_.joinable()) keeper_.join();
  // A clean stop (everything saved by now): a standby takes over at once.
  if (lease_ != nullptr && fence_epoch_.load() > 0) (void)lease_->Release();
}

absl::Status PostgresStateStore::Fence(pqxx::work& tx) {
  return LeaderLease::Fence(tx, fence_holder_, fence_epoch_.load(), Describe());
}

absl::Status PostgresStateStore::Lead(const Leadership& leadership) {
  lease_connection_ = std::make_unique<PostgresConnection>(connect_string_, Describe());
  lease_ = std::make_unique<LeaderLease>(lease_connection_.get(), leadership.holder, leadership.address,
                                         leadership.term);
  auto pause = leadership.pause ? leadership.pause : [](absl::Duration d) {
    absl::SleepFor(d);
    return false;
  };
  std::string announced;
  for (;;) {
    auto taken = lease_->TryAcquire();
    if (taken.ok() && *taken) break;
    if (!taken.ok()) {
      Logger("controller")->warn("leader lease: {}", taken.status().ToString());
    } else if (auto leader = lease_->Leader(); leader.ok() && *leader != announced) {
      announced = *leader;
      Logger("controller")->info("standing by: the controller at {} leads; taking over when its lease runs out",
                                 announced.empty() ? "(none yet)" : announced);
    }
    if (pause(leadership.term / 4)) return absl::CancelledError("stopped while standing by");
  }
  fence_holder_ = leadership.holder;
  fence_epoch_ = lease_->epoch();
  Logger("controller")->info("leading (lease term {}, renewed every {})", fence_epoch_.load(),
                             absl::FormatDuration(leadership.term / 3));
  keeper_ = std::thread([this, leadership] { KeepLease(leadership); });
  return absl::OkStatus();
}

void PostgresStateStore::KeepLease(Leadership leadership) {
  absl::Time last_renewed = absl::Now();
  for (;;) {
    {
      absl::MutexLock lock(&lease_mu_);
      if (lease_mu_.AwaitWithTimeout(absl::Condition(&stopping_), leadership.term / 3)) return;
    }
    absl::Status renewed = lease_->Renew();
    if (renewed.ok()) {
      last_renewed = absl::Now();
      continue;
    }
    // An unreachable database is lost only once a whole term passed without a renewal
    // (by then a standby may lead); a refusal is lost at once.
    if (renewed.code() != absl::StatusCode::kFailedPrecondition && absl::Now() - last_renewed < leadership.term) {
      Logger("controller")->warn("leader lease: {}", renewed.ToString());
      continue;
    }
    fence_epoch_ = -1;  // no write passes the fence any more
    Logger("controller")->error("leader lease lost: {}", renewed.ToString());
    if (leadership.on_lost) leadership.on_lost(renewed);
    return;
  }
}

absl::StatusOr<std::unique_ptr<PostgresStateStore>> PostgresStateStore::Open(const std::string& url,
                                                                            const std::string& password) {
  if (HasInlinePassword(url)) {
    return absl::InvalidArgumentError(
        "--state: the URL carries a password, which would show in `ps` and in logs; give it in "
        "--state_password_file (or PGPASSFILE) and leave it out of the URL");
  }
  std::unique_ptr<PostgresStateStore> store(new PostgresStateStore(url, WithPassword(url, password)));
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

absl::Status PostgresStateStore::Migrate() {
  // A connection of its own, without the prepared statements: they name tables a
  // new database does not have yet.
  PostgresConnection migrating(connect_string_, Describe());
  return migrating.Run("cannot migrate the schema", [&](pqxx::connection& connection) -> absl::Status {
    pqxx::work tx(connection);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    tx.exec("CREATE TABLE IF NOT EXISTS dockyard_schema (version INTEGER NOT NULL)");
    const pqxx::result rows = tx.exec("SELECT version FROM dockyard_schema");
    if (rows.size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat(Describe(), " has ", rows.size(), " dockyard_schema rows; expected at most one"));
    }
    const int version = rows.empty() ? 0 : rows[0][0].as<int>();
    if (version > SchemaVersion()) {
      return absl::FailedPreconditionError(absl::StrCat(Describe(), " has schema version ", version,
                                                        "; this controller reads up to version ", SchemaVersion()));
    }
    for (int next = version; next < SchemaVersion(); ++next) tx.exec(kMigrations[next]);
    if (rows.empty()) {
      tx.exec_params("INSERT INTO dockyard_schema (version) VALUES ($1)", SchemaVersion());
    } else if (version != SchemaVersion()) {
      tx.exec_params("UPDATE dockyard_schema SET version = $1", SchemaVersion());
    }
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status PostgresStateStore::Save(const std::vector<v1::RunRecord>& runs,
                                      const std::vector<v1::AgentRecord>& agents,
                                      const std::vector<v1::Artifact>& artifacts,
                                      const std::vector<v1::StageRecord>& stages) {
  if (runs.empty() && agents.empty() && artifacts.empty() && stages.empty()) return absl::OkStatus();
  // Nothing of a failed save stays (the transaction rolls back when `tx` goes
  // without a commit): the next save writes these records again.
  return connection_.Run("cannot save", [&](pqxx::connection& connection) -> absl::Status {
    pqxx::work tx(connection);
    RETURN_IF_ERROR(Fence(tx));
    for (const v1::RunRecord& run : runs) {
      tx.exec_prepared("put_run", run.run().id(), pqxx::binarystring(run.SerializeAsString()));
      tx.exec_prepared("drop_stages", run.run().id(), run.version());
    }
    for (const v1::StageRecord& stage : stages) {
      tx.exec_prepared("put_stage", stage.run_id(), stage.index(), stage.run_version(),
                       pqxx::binarystring(stage.SerializeAsString()));
    }
    for (const v1::AgentRecord& agent : agents) {
      tx.exec_prepared("put_agent", agent.registration().name(), pqxx::binarystring(agent.SerializeAsString()));
    }
    for (const v1::Artifact& artifact : artifacts) {
      tx.exec_prepared("put_artifact", artifact.run_id(), ArtifactKey(artifact),
                       pqxx::binarystring(artifact.SerializeAsString()));
    }
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status PostgresStateStore::PutIdentity(const std::string& kind, const std::string& key,
                                             const std::string& record) {
  return connection_.Run(absl::StrCat("cannot save ", kind, " ", key), [&](pqxx::connection& connection) -> absl::Status {
    pqxx::work tx(connection);
    RETURN_IF_ERROR(Fence(tx));
    tx.exec_prepared("put_identity", kind, key, pqxx::binarystring(record));
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status PostgresStateStore::DeleteIdentity(const std::string& kind, const std::string& key) {
  return connection_.Run(absl::StrCat("cannot delete ", kind, " ", key), [&](pqxx::connection& connection) -> absl::Status {
    pqxx::work tx(connection);
    RETURN_IF_ERROR(Fence(tx));
    tx.exec_prepared("delete_identity", kind, key);
    tx.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<StateStore::Contents> PostgresStateStore::Load() {
  Contents contents;
  RETURN_IF_ERROR(connection_.Run("cannot load", [&](pqxx::connection& connection) -> absl::Status {
    // One snapshot: every table as of one moment.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(connection);
    auto read = [&](const std::string& sql, const char* what, auto add) -> absl::Status {
      for (const pqxx::row& row : tx.exec(sql)) {
        if (!add(Bytes(row[1]))) {
          return absl::DataLossError(absl::StrCat(Describe(), ": the record of ", what, " \"",
                                                  row[0].as<std::string>(), "\" does not parse"));
        }
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(read(absl::StrCat("SELECT id, record FROM runs ORDER BY ", kRunOrder), "run",
                         [&](const std::string& bytes) { return contents.runs.emplace_back().ParseFromString(bytes); }));
    std::vector<v1::StageRecord> stages;
    RETURN_IF_ERROR(read("SELECT run_id || '/' || idx, record FROM stages", "stage",
                         [&](const std::string& bytes) { return stages.emplace_back().ParseFromString(bytes); }));
    ApplyStageRecords(stages, contents.runs);
    RETURN_IF_ERROR(read("SELECT name, record FROM agents ORDER BY name", "agent", [&](const std::string& bytes) {
      return contents.agents.emplace_back().ParseFromString(bytes);
    }));
    RETURN_IF_ERROR(read(
        "SELECT a.run_id || '/' || a.name, a.record FROM artifacts a "
        "ORDER BY (CASE WHEN a.run_id ~ '^[0-9]{1,18}$' THEN a.run_id::BIGINT END) NULLS FIRST, a.run_id, a.ordinal",
        "artifact", [&](const std::string& bytes) { return contents.artifacts.emplace_back().ParseFromString(bytes); }));
    for (const pqxx::row& row : tx.exec("SELECT kind, key, record FROM identity ORDER BY kind, ordinal")) {
      RETURN_IF_ERROR(AddIdentity(row[0].as<std::string>(), row[1].as<std::string>(), Bytes(row[2]), contents));
    }
    tx.commit();
    return absl::OkStatus();
  }));
  return contents;
}

absl::Status PostgresStateStore::DeleteRuns(const std::vector<std::string>& run_ids) {
  if (run_ids.empty()) return absl::OkStatus();
  return connection_.Run("cannot delete runs", [&](pqxx::connection& connection) -> absl::Status {
    pqxx::work tx(connection);
    RETURN_IF_ERROR(Fence(tx));
    for (const std::string& id : run_ids) {
      tx.exec_params("DELETE FROM runs WHERE id = $1", id);
      tx.exec_params("DELETE FROM stages WHERE run_id = $1", id);
      tx.exec_params("DELETE FROM artifacts WHERE run_id = $1", id);
    }
    tx.commit();
    return absl::OkStatus();
  });
}

std::unique_ptr<LogBackend> PostgresStateStore::NewLogBackend(const std::string&, BlobStore* archive) {
  auto backend = std::make_unique<PostgresLogBackend>(connect_string_, Describe(), archive);
  if (fence_epoch_.load() != 0) backend->SetFence(fence_holder_, &fence_epoch_);
  return backend;
}

}  // namespace dockyard
