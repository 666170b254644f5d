// The state store's contract (tests/unit/controller/state_store_contract.cc) on a
// real PostgreSQL server, plus what only a server can do wrong: a login refused.
#include <string>

#include <pqxx/pqxx>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "absl/strings/ascii.h"
#include "common/files.h"
#include "tests/support/postgres_server.h"
#include "tests/support/scratch_dir.h"
#include "tests/unit/controller/state_store_contract.h"

namespace dockyard {
namespace {

using ::dockyard::testing::StateStoreContract;
using ::testing::HasSubstr;

StateStoreOptions FreshDatabase() {
  const std::string server = testing::PostgresForTests();
  EXPECT_FALSE(server.empty()) << "DOCKYARD_TEST_SCALEOUT is not set: run through ctest (fixture scaleout)";
  auto database = testing::CreateDatabase(server, "contract");
  EXPECT_TRUE(database.ok()) << database.status();
  StateStoreOptions options;
  options.spec = database.ok() ? database->url : "postgresql://nowhere@127.0.0.1:1/none";
  options.password_file = database.ok() ? database->password_file : "";
  options.data_dir = testing::FreshDir();
  return options;
}

void RawSql(const StateStoreOptions& options, const std::string& sql) {
  auto password = ReadFileToString(options.password_file);
  ASSERT_TRUE(password.ok());
  pqxx::connection connection(options.spec + "?password=" + std::string(absl::StripAsciiWhitespace(*password)));
  pqxx::work tx(connection);
  tx.exec(sql);
  tx.commit();
}

INSTANTIATE_TEST_SUITE_P(Postgres, StateStoreContract,
                         ::testing::Values(testing::StateStoreBackend{
                             "postgres", FreshDatabase, RawSql,
                             [](const std::string& hex) { return "'\\x" + hex + "'::bytea"; }, "dockyard_schema"}),
                         [](const auto& info) { return info.param.name; });

TEST(PostgresStateStore, AWrongPasswordIsRefusedAtOpenWithoutShowingIt) {
  StateStoreOptions options = FreshDatabase();
  options.password_file = testing::FreshDir() + "/wrong-password";
  ASSERT_TRUE(WriteFileAtomically(options.password_file, "not-the-password-xyz\n").ok());
  auto store = OpenStateStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("password authentication failed"));
  EXPECT_THAT(std::string(store.status().message()), ::testing::Not(HasSubstr("not-the-password-xyz")));
}

TEST(PostgresStateStore, ASaveAfterTheConnectionWasCutReconnects) {
  const StateStoreOptions options = FreshDatabase();
  auto store = OpenStateStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::RunRecord run;
  run.mutable_run()->set_id("1");
  ASSERT_TRUE((*store)->Save({run}, {}).ok());
  // What a server restart or a failover does to the open connection.
  const std::string database = options.spec.substr(options.spec.rfind('/') + 1);
  RawSql(options, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database +
                      "' AND pid <> pg_backend_pid()");
  run.mutable_run()->set_id("2");
  absl::Status saved = (*store)->Save({run}, {});
  if (!saved.ok()) {  // the cut is noticed by this save; the next one reconnects
    EXPECT_EQ(saved.code(), absl::StatusCode::kUnavailable) << saved;
    saved = (*store)->Save({run}, {});
  }
  ASSERT_TRUE(saved.ok()) << saved;
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->runs.size(), 2u);
}

}  // namespace
}  // namespace dockyard
