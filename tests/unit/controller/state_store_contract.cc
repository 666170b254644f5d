#include "tests/unit/controller/state_store_contract.h"

#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/message_differencer.h>

#include "gmock/gmock.h"

namespace dockyard::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

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

std::unique_ptr<StateStore> OpenOrDie(const StateStoreOptions& options) {
  auto store = OpenStateStore(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

TEST_P(StateStoreContract, SavedRecordsLoadBackUnchanged) {
  auto store = OpenOrDie(GetParam().fresh());
  ASSERT_NE(store, nullptr);
  const v1::RunRecord run1 = RunAt("1", v1::STAGE_RUNNING);
  const v1::RunRecord run2 = RunAt("2", v1::STAGE_QUEUED);
  const v1::AgentRecord agent = Agent("a1");
  ASSERT_TRUE(store->Save({run1, run2}, {agent}).ok());
  ASSERT_TRUE(store->SaveArtifact(Artifact("1", "app.whl")).ok());

  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 2u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], run1)) << loaded->runs[0].DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[1], run2));
  ASSERT_EQ(loaded->agents.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->agents[0], agent));
  ASSERT_EQ(loaded->artifacts.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->artifacts[0], Artifact("1", "app.whl")));
}

TEST_P(StateStoreContract, ReopenedStoreSeesWhatWasSaved) {
  const StateStoreOptions options = GetParam().fresh();
  {
    auto store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_RUNNING)}, {Agent("a1")}).ok());
    ASSERT_TRUE(store->SaveArtifact(Artifact("1", "app.whl")).ok());
  }
  auto store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], RunAt("1", v1::STAGE_RUNNING)));
  ASSERT_EQ(loaded->agents.size(), 1u);
  EXPECT_EQ(loaded->agents[0].registration().name(), "a1");
  ASSERT_EQ(loaded->artifacts.size(), 1u);
  EXPECT_EQ(loaded->artifacts[0].name(), "app.whl");
}

TEST_P(StateStoreContract, SavingARecordAgainReplacesItAndKeepsItsPlace) {
  auto store = OpenOrDie(GetParam().fresh());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_RUNNING)}, {Agent("a1")}).ok());
  ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_SUCCEEDED)}, {}).ok());
  v1::Artifact artifact = Artifact("1", "app.whl");
  ASSERT_TRUE(store->SaveArtifact(artifact).ok());
  ASSERT_TRUE(store->SaveArtifact(Artifact("1", "lib.whl")).ok());
  artifact.set_size(99);
  ASSERT_TRUE(store->SaveArtifact(artifact).ok());

  auto loaded = store->Load();
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

TEST_P(StateStoreContract, ArtifactsOfTwoStagesWithOneNameAreKeptApart) {
  auto store = OpenOrDie(GetParam().fresh());
  ASSERT_NE(store, nullptr);
  v1::Artifact test_report = Artifact("1", "report.xml");
  test_report.set_stage("test");
  ASSERT_TRUE(store->Save({}, {}, {Artifact("1", "report.xml"), test_report}).ok());
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->artifacts.size(), 2u);
  EXPECT_EQ(loaded->artifacts[0].stage(), "build");
  EXPECT_EQ(loaded->artifacts[1].stage(), "test");
}

TEST_P(StateStoreContract, RunsLoadInNumericOrder) {
  auto store = OpenOrDie(GetParam().fresh());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Save({RunAt("10", v1::STAGE_QUEUED), RunAt("9", v1::STAGE_QUEUED)}, {}).ok());
  ASSERT_TRUE(store->Save({}, {}, {Artifact("10", "b.whl"), Artifact("9", "a.whl")}).ok());
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 2u);
  EXPECT_EQ(loaded->runs[0].run().id(), "9");
  EXPECT_EQ(loaded->runs[1].run().id(), "10");
  ASSERT_EQ(loaded->artifacts.size(), 2u);
  EXPECT_EQ(loaded->artifacts[0].run_id(), "9");
}

TEST_P(StateStoreContract, IdentityRecordsLoadBackByKindAndASecretCanBeDeleted) {
  auto store = OpenOrDie(GetParam().fresh());
  ASSERT_NE(store, nullptr);
  v1::TokenRecord token;
  token.mutable_info()->set_id("t1");
  token.mutable_info()->set_name("jenkins");
  v1::EnrolTokenRecord enrol;
  enrol.set_id("e1");
  v1::EnrolledAgentRecord enrolled;
  enrolled.set_name("builder-1");
  v1::SecretRecord secret;
  secret.mutable_info()->set_name("PYPI_TOKEN");
  v1::SecretRecord other = secret;
  other.mutable_info()->set_name("DB_PASSWORD");
  ASSERT_TRUE(store->SaveToken(token).ok());
  ASSERT_TRUE(store->SaveEnrolToken(enrol).ok());
  ASSERT_TRUE(store->SaveEnrolledAgent(enrolled).ok());
  ASSERT_TRUE(store->SaveSecret(secret).ok());
  ASSERT_TRUE(store->SaveSecret(other).ok());
  ASSERT_TRUE(store->DeleteSecret("PYPI_TOKEN").ok());
  ASSERT_TRUE(store->DeleteSecret("never-saved").ok());

  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->tokens.size(), 1u);
  EXPECT_EQ(loaded->tokens[0].info().name(), "jenkins");
  ASSERT_EQ(loaded->enrol_tokens.size(), 1u);
  EXPECT_EQ(loaded->enrol_tokens[0].id(), "e1");
  ASSERT_EQ(loaded->enrolled_agents.size(), 1u);
  EXPECT_EQ(loaded->enrolled_agents[0].name(), "builder-1");
  ASSERT_EQ(loaded->secrets.size(), 1u);
  EXPECT_EQ(loaded->secrets[0].info().name(), "DB_PASSWORD");
}

v1::StageRecord StageOf(const std::string& run, v1::StageState state, int64_t run_version) {
  v1::StageRecord record;
  record.set_run_id(run);
  record.set_index(0);
  record.mutable_info()->set_name("build");
  record.mutable_info()->set_state(state);
  record.mutable_info()->set_attempt(2);
  record.set_lost_retries_left(0);
  record.set_fail_retries_left(0);
  record.set_run_version(run_version);
  return record;
}

TEST_P(StateStoreContract, AStageSavedAloneReplacesItsPartOfTheRunOnlyWhileNewer) {
  const StateStoreOptions options = GetParam().fresh();
  {
    auto store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_QUEUED), RunAt("2", v1::STAGE_QUEUED)}, {}).ok());  // version 7
    ASSERT_TRUE(store->Save({}, {}, {}, {StageOf("1", v1::STAGE_RUNNING, 8)}).ok());
    ASSERT_TRUE(store->Save({}, {}, {}, {StageOf("1", v1::STAGE_SUCCEEDED, 9)}).ok());
    ASSERT_TRUE(store->Save({}, {}, {}, {StageOf("1", v1::STAGE_RUNNING, 8)}).ok());  // late and older: ignored
    ASSERT_TRUE(store->Save({}, {}, {}, {StageOf("2", v1::STAGE_FAILED, 6)}).ok());  // older than its run
    ASSERT_TRUE(store->Save({}, {}, {}, {StageOf("gone", v1::STAGE_FAILED, 99)}).ok());
  }
  auto store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 2u);
  v1::RunRecord expected = RunAt("1", v1::STAGE_SUCCEEDED);
  expected.mutable_run()->mutable_stages(0)->set_attempt(2);
  expected.mutable_run()->mutable_stages(0)->clear_agent();
  expected.set_lost_retries_left(0, 0);
  expected.set_version(9);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], expected)) << loaded->runs[0].DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[1], RunAt("2", v1::STAGE_QUEUED)));

  // The run saved whole again (newer than its stage records) is what loads.
  v1::RunRecord whole = RunAt("1", v1::STAGE_FAILED);
  whole.set_version(10);
  ASSERT_TRUE(store->Save({whole}, {}).ok());
  loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], whole)) << loaded->runs[0].DebugString();
}

TEST_P(StateStoreContract, DeletedRunsGoWithTheirArtifactsAndTheOthersStay) {
  const StateStoreOptions options = GetParam().fresh();
  {
    auto store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_SUCCEEDED), RunAt("2", v1::STAGE_SUCCEEDED),
                             RunAt("3", v1::STAGE_RUNNING)},
                            {}, {Artifact("1", "a.whl"), Artifact("2", "b.whl"), Artifact("3", "c.whl")})
                    .ok());
    ASSERT_TRUE(store->Save({}, {}, {}, {StageOf("1", v1::STAGE_FAILED, 8)}).ok());
    ASSERT_TRUE(store->DeleteRuns({"1", "2", "never-was"}).ok());
    // A run saved again under a deleted id does not inherit the old one's stages.
    ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_QUEUED)}, {}).ok());
  }
  auto store = OpenOrDie(options);  // deleted for good, not only in this process
  ASSERT_NE(store, nullptr);
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->runs.size(), 2u);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->runs[0], RunAt("1", v1::STAGE_QUEUED)));
  EXPECT_EQ(loaded->runs[1].run().id(), "3");
  ASSERT_EQ(loaded->artifacts.size(), 1u);
  EXPECT_EQ(loaded->artifacts[0].name(), "c.whl");
}

TEST_P(StateStoreContract, SavesFromManyThreadsAllLand) {
  auto store = OpenOrDie(GetParam().fresh());
  ASSERT_NE(store, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(store->Save({RunAt(std::to_string(t * 100 + i), v1::STAGE_QUEUED)}, {}).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->runs.size(), 100u);
}

TEST_P(StateStoreContract, TwoStoresOpeningOneNewLocationAtOnceBothWork) {
  const StateStoreOptions options = GetParam().fresh();
  std::unique_ptr<StateStore> first;
  std::unique_ptr<StateStore> second;
  std::thread opener([&] { first = OpenOrDie(options); });
  second = OpenOrDie(options);
  opener.join();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(first->Save({RunAt("1", v1::STAGE_QUEUED)}, {}).ok());
  auto loaded = second->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->runs.size(), 1u);
}

TEST_P(StateStoreContract, StoreOfANewerSchemaVersionIsRefusedNamingIt) {
  const StateStoreOptions options = GetParam().fresh();
  ASSERT_NE(OpenOrDie(options), nullptr);
  GetParam().raw_sql(options, "UPDATE " + GetParam().schema_table + " SET version = 99");
  auto store = OpenStateStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 99"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("state database "));
}

TEST_P(StateStoreContract, RecordThatDoesNotParseIsDataLossNamingIt) {
  const StateStoreOptions options = GetParam().fresh();
  {
    auto store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Save({RunAt("1", v1::STAGE_RUNNING)}, {}).ok());
  }
  GetParam().raw_sql(options, "UPDATE runs SET record = " + GetParam().bytes_literal("ffffffff") + " WHERE id = '1'");
  auto store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto loaded = store->Load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << loaded.status();
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("run \"1\""));
}

}  // namespace
}  // namespace dockyard::testing
