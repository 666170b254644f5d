#include "controller/sqlite_state_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/support/scratch_dir.h"
#include "tests/unit/controller/state_store_contract.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using ::dockyard::testing::FreshDir;
using ::dockyard::testing::StateStoreContract;

// Runs `sql` on the database file directly, as an operator's sqlite3 shell would.
void RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// The contract every engine meets (state_store_contract.cc), on SQLite.
INSTANTIATE_TEST_SUITE_P(
    Sqlite, StateStoreContract,
    ::testing::Values(testing::StateStoreBackend{
        "sqlite",
        [] {
          StateStoreOptions options;
          options.data_dir = FreshDir();
          return options;
        },
        [](const StateStoreOptions& options, const std::string& sql) { RawSql(options.data_dir + "/state.db", sql); },
        [](const std::string& hex) { return "x'" + hex + "'"; },
        "schema_version"}),
    [](const auto& info) { return info.param.name; });

TEST(StateStore, NewDatabaseIsInWalModeWithASchemaVersion) {
  const std::string path = FreshDir() + "/state.db";
  ASSERT_TRUE(SqliteStateStore::Open(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto single = [db](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    std::string value(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(single("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(single("SELECT version FROM schema_version"), std::to_string(SqliteStateStore::kSchemaVersion));
  sqlite3_close(db);
}

TEST(StateStore, AVersion2DatabaseIsMigratedKeepingItsRunsAndTakesStageRecords) {
  const std::string path = FreshDir() + "/state.db";
  v1::RunRecord run;
  run.mutable_pipeline()->add_stages()->set_name("build");
  run.mutable_run()->set_id("1");
  run.mutable_run()->add_stages()->set_name("build");
  run.add_lost_retries_left(1);
  run.add_fail_retries_left(0);
  run.set_version(3);
  std::string hex;
  for (unsigned char c : run.SerializeAsString()) hex += absl::StrFormat("%02x", c);
  // The schema as a controller of version 2 left it.
  RawSql(path, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
               "CREATE TABLE runs (id TEXT PRIMARY KEY, record BLOB NOT NULL);"
               "CREATE TABLE agents (name TEXT PRIMARY KEY, record BLOB NOT NULL);"
               "CREATE TABLE artifacts (run_id TEXT NOT NULL, name TEXT NOT NULL, record BLOB NOT NULL,"
               "  PRIMARY KEY (run_id, name));"
               "CREATE TABLE identity (kind TEXT NOT NULL, key TEXT NOT NULL, record BLOB NOT NULL,"
               "  PRIMARY KEY (kind, key));"
               "INSERT INTO schema_version VALUES (2);"
               "INSERT INTO runs VALUES ('1', x'" + hex + "');");
  auto store = SqliteStateStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::StageRecord stage;
  stage.set_run_id("1");
  stage.set_index(0);
  stage.mutable_info()->set_name("build");
  stage.mutable_info()->set_state(v1::STAGE_RUNNING);
  stage.set_run_version(4);
  ASSERT_TRUE((*store)->Save({}, {}, {}, {stage}).ok());
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 1u);
  EXPECT_EQ(loaded->runs[0].run().stages(0).state(), v1::STAGE_RUNNING);
  EXPECT_EQ(loaded->runs[0].version(), 4);
}

TEST(StateStore, FileThatIsNotADatabaseIsRefusedNamingItsPath) {
  const std::string path = FreshDir() + "/state.db";
  std::ofstream(path) << std::string(8192, 'x');
  auto store = SqliteStateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST(StateStore, DatabaseThatIsNotDockyardsIsRefused) {
  const std::string path = FreshDir() + "/state.db";
  RawSql(path, "CREATE TABLE something (x INTEGER)");
  auto store = SqliteStateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a Dockyard state database"));
}

TEST(OpenStateStore, AnUnknownEngineIsRefusedNamingTheFlag) {
  StateStoreOptions options;
  options.spec = "mysql://ci@db/dockyard";
  options.data_dir = FreshDir();
  auto store = OpenStateStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("--state="));
}

TEST(OpenStateStore, APostgresUrlCarryingAPasswordIsRefusedWithoutShowingIt) {
  StateStoreOptions options;
  options.spec = "postgresql://ci:hunter2-secret@127.0.0.1:1/dockyard";
  auto store = OpenStateStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("--state_password_file"));
  EXPECT_THAT(std::string(store.status().message()), ::testing::Not(HasSubstr("hunter2")));
}

TEST(OpenStateStore, AMissingPasswordFileIsNamed) {
  StateStoreOptions options;
  options.spec = "postgresql://ci@127.0.0.1:1/dockyard";
  options.password_file = FreshDir() + "/no-such-password";
  auto store = OpenStateStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("no-such-password"));
}

TEST(OpenStateStore, AnUnreachableServerIsUnavailableNamingTheUrlButNotThePassword) {
  StateStoreOptions options;
  options.spec = "postgresql://ci@127.0.0.1:1/dockyard?connect_timeout=2";
  options.password_file = FreshDir() + "/password";
  std::ofstream(options.password_file) << "s3cret-value\n";
  auto store = OpenStateStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("postgresql://ci@127.0.0.1:1/dockyard"));
  EXPECT_THAT(std::string(store.status().message()), ::testing::Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace dockyard

