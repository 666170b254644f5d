#include "controller/state_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <google/protobuf/util/message_differencer.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

using ::dockyard::testing::FreshDir;

v1::RunRecord RunAt(const std::string& id, v1::StageState state) {
  v1::RunRecord record;
  record.mutable_pipeline()->set_name("wheels");
  v1::Stage* spec = record.mutable_pipeline()->add_stages();
  spec->set_name("build");
  spec->set_image("dockyard/busybox");
  record.mutable_run()->set_id(id);
  record.mutable_run()->set_state(v1::RUN_RUNNING);
  v1::StageInfo* stage = record.mutable_run()->add_stages();
  stage->set_name("build");
  stage->set_state(state);
  stage->set_attempt(1);
  stage->set_agent("a1");
  (*record.mutable_cache_agent())["pip"] = "a1";
  record.add_lost_retries_left(1);
  record.add_fail_retries_left(0);
  record.set_seq(std::stoi(id) + 1);
  record.set_version(7);
  return record;
}

v1::AgentRecord Agent(const std::string& name) {
  v1::AgentRecord record;
  record.mutable_registration()->set_name(name);
  record.mutable_registration()->set_slots(2);
  record.mutable_registration()->add_labels("linux");
  v1::StageRef* ref = record.add_running();
  ref->set_run_id("1");
  ref->set_stage("build");
  ref->set_attempt(1);
  return record;
}

v1::Artifact Artifact(const std::string& run, const std::string& name) {
  v1::Artifact artifact;
  artifact.set_run_id(run);
  artifact.set_stage("build");
  artifact.set_name(name);
  artifact.set_path("/dist/" + name);
  artifact.set_size(42);
  artifact.set_sha256(std::string(64, 'a'));
  return artifact;
}

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

TEST(StateStore, SavedRecordsLoadBackUnchanged) {
  auto store = StateStore::Open(FreshDir() + "/state.db");
  ASSERT_TRUE(store.ok()) << store.status();
  const v1::RunRecord run1 = RunAt("1", v1::STAGE_RUNNING);
  const v1::RunRecord run2 = RunAt("2", v1::STAGE_QUEUED);
  const v1::AgentRecord agent = Agent("a1");
  ASSERT_TRUE((*store)->Save({run1, run2}, {agent}).ok());
  ASSERT_TRUE((*store)->SaveArtifact(Artifact("1", "app.whl")).ok());

  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 2u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], run1)) << loaded->runs[0].DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[1], run2));
  ASSERT_EQ(loaded->agents.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->agents[0], agent));
  ASSERT_EQ(loaded->artifacts.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->artifacts[0], Artifact("1", "app.whl")));
}

TEST(StateStore, ReopenedDatabaseSeesWhatWasSaved) {
  const std::string path = FreshDir() + "/state.db";
  {
    auto store = StateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Save({RunAt("1", v1::STAGE_RUNNING)}, {Agent("a1")}).ok());
    ASSERT_TRUE((*store)->SaveArtifact(Artifact("1", "app.whl")).ok());
  }
  auto store = StateStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], RunAt("1", v1::STAGE_RUNNING)));
  ASSERT_EQ(loaded->agents.size(), 1u);
  EXPECT_EQ(loaded->agents[0].registration().name(), "a1");
  ASSERT_EQ(loaded->artifacts.size(), 1u);
  EXPECT_EQ(loaded->artifacts[0].name(), "app.whl");
}

TEST(StateStore, SavingARecordAgainReplacesIt) {
  auto store = StateStore::Open(FreshDir() + "/state.db");
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Save({RunAt("1", v1::STAGE_RUNNING)}, {Agent("a1")}).ok());
  ASSERT_TRUE((*store)->Save({RunAt("1", v1::STAGE_SUCCEEDED)}, {}).ok());
  v1::Artifact artifact = Artifact("1", "app.whl");
  ASSERT_TRUE((*store)->SaveArtifact(artifact).ok());
  ASSERT_TRUE((*store)->SaveArtifact(Artifact("1", "lib.whl")).ok());
  artifact.set_size(99);
  ASSERT_TRUE((*store)->SaveArtifact(artifact).ok());

  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 1u);
  EXPECT_EQ(loaded->runs[0].run().stages(0).state(), v1::STAGE_SUCCEEDED);
  EXPECT_EQ(loaded->agents.size(), 1u);
  // Replaced in place: the index keeps the order artifacts were first published in.
  ASSERT_EQ(loaded->artifacts.size(), 2u);
  EXPECT_EQ(loaded->artifacts[0].name(), "app.whl");
  EXPECT_EQ(loaded->artifacts[0].size(), 99);
  EXPECT_EQ(loaded->artifacts[1].name(), "lib.whl");
}

TEST(StateStore, RunsLoadInNumericOrder) {
  auto store = StateStore::Open(FreshDir() + "/state.db");
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Save({RunAt("10", v1::STAGE_QUEUED), RunAt("9", v1::STAGE_QUEUED)}, {}).ok());
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 2u);
  EXPECT_EQ(loaded->runs[0].run().id(), "9");
  EXPECT_EQ(loaded->runs[1].run().id(), "10");
}

TEST(StateStore, NewDatabaseIsInWalModeWithASchemaVersion) {
  const std::string path = FreshDir() + "/state.db";
  ASSERT_TRUE(StateStore::Open(path).ok());
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
  EXPECT_EQ(single("SELECT version FROM schema_version"), std::to_string(StateStore::kSchemaVersion));
  sqlite3_close(db);
}

TEST(StateStore, FileThatIsNotADatabaseIsRefusedNamingItsPath) {
  const std::string path = FreshDir() + "/state.db";
  std::ofstream(path) << std::string(8192, 'x');
  auto store = StateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST(StateStore, DatabaseOfAnotherSchemaVersionIsRefused) {
  const std::string path = FreshDir() + "/state.db";
  ASSERT_TRUE(StateStore::Open(path).ok());
  RawSql(path, "UPDATE schema_version SET version = 99");
  auto store = StateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 99"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST(StateStore, DatabaseThatIsNotDockyardsIsRefused) {
  const std::string path = FreshDir() + "/state.db";
  RawSql(path, "CREATE TABLE something (x INTEGER)");
  auto store = StateStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a Dockyard state database"));
}

TEST(StateStore, RecordThatDoesNotParseIsDataLossNamingIt) {
  const std::string path = FreshDir() + "/state.db";
  {
    auto store = StateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Save({RunAt("1", v1::STAGE_RUNNING)}, {}).ok());
  }
  RawSql(path, "UPDATE runs SET record = x'ffffffff' WHERE id = '1'");
  auto store = StateStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto loaded = (*store)->Load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << loaded.status();
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("run \"1\""));
}

}  // namespace
}  // namespace dockyard
