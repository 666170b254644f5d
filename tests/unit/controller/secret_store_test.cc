#include "controller/secret_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>

#include "common/files.h"
#include "tests/support/scratch_dir.h"
#include "controller/sqlite_state_store.h"

namespace dockyard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kValue[] = "pa55word-for-the-db";

// A controller's secrets as they live in a data dir: state.db and secrets.key.
class Secrets {
 public:
  explicit Secrets(std::string dir) : dir_(std::move(dir)) { EXPECT_TRUE(Open().ok()); }

  // As after a restart: everything is read back from disk.
  absl::Status Open() {
    store_.reset();
    state_.reset();
    auto state = SqliteStateStore::Open(dir_ + "/state.db");
    if (!state.ok()) return state.status();
    state_ = *std::move(state);
    auto contents = state_->Load();
    if (!contents.ok()) return contents.status();
    auto store = SecretStore::Open(dir_ + "/secrets.key", state_.get(), contents->secrets);
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    return absl::OkStatus();
  }

  SecretStore& store() { return *store_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::unique_ptr<SqliteStateStore> state_;
  std::unique_ptr<SecretStore> store_;
};

std::string ReadAll(const std::string& path) {
  auto bytes = ReadFileToString(path);
  return bytes.ok() ? *bytes : "";
}

TEST(SecretStore, AValueSetIsHandedOutAfterARestartAndNeverStoredInClear) {
  Secrets secrets(testing::FreshDir());
  auto replaced = secrets.store().Set("DB_PASSWORD", kValue, "token admin (admin)");
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_FALSE(*replaced);
  ASSERT_TRUE(secrets.Open().ok());
  auto values = secrets.store().Values({"DB_PASSWORD"});
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 1u);
  EXPECT_EQ((*values)[0].value(), kValue);
  // Neither the database nor its write-ahead log holds the value.
  for (const char* file : {"/state.db", "/state.db-wal"}) {
    EXPECT_THAT(ReadAll(secrets.dir() + file), Not(HasSubstr(kValue))) << file;
  }
  struct stat st {};
  ASSERT_EQ(::stat((secrets.dir() + "/secrets.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SecretStore, ListShowsNamesAndWhoSetThemNeverValues) {
  Secrets secrets(testing::FreshDir());
  ASSERT_TRUE(secrets.store().Set("B_TOKEN", kValue, "token ops (admin)").ok());
  ASSERT_TRUE(secrets.store().Set("A_KEY", kValue, "token ops (admin)").ok());
  auto replaced = secrets.store().Set("A_KEY", "another-value", "token ops (admin)");
  ASSERT_TRUE(replaced.ok());
  EXPECT_TRUE(*replaced);
  std::vector<v1::SecretInfo> list = secrets.store().List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name(), "A_KEY");
  EXPECT_EQ(list[0].updated_by(), "token ops (admin)");
  EXPECT_THAT(list[0].DebugString(), Not(HasSubstr("another-value")));
}

TEST(SecretStore, BadNamesAndValuesAreRefusedWithoutQuotingTheValue) {
  Secrets secrets(testing::FreshDir());
  auto short_value = secrets.store().Set("SHORT", "abc12", "x");
  EXPECT_TRUE(absl::IsInvalidArgument(short_value.status()));
  EXPECT_THAT(std::string(short_value.status().message()), HasSubstr("at least 6"));
  EXPECT_THAT(std::string(short_value.status().message()), Not(HasSubstr("abc12")));
  EXPECT_TRUE(absl::IsInvalidArgument(secrets.store().Set("1BAD", kValue, "x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(secrets.store().Set("A-B", kValue, "x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(secrets.store().Set("NUL", std::string("abc\0def", 7), "x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      secrets.store().Set("HUGE", std::string(kMaxSecretBytes + 1, 'x'), "x").status()));
}

TEST(SecretStore, AMissingSecretIsNamedAndADeletedOneIsGone) {
  Secrets secrets(testing::FreshDir());
  ASSERT_TRUE(secrets.store().Set("KEEP", kValue, "x").ok());
  auto missing = secrets.store().Values({"KEEP", "NOPE"});
  EXPECT_TRUE(absl::IsFailedPrecondition(missing.status()));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("secret NOPE is not set"));
  ASSERT_TRUE(secrets.store().Delete("KEEP").ok());
  EXPECT_TRUE(absl::IsNotFound(secrets.store().Delete("KEEP")));
  ASSERT_TRUE(secrets.Open().ok());
  EXPECT_FALSE(secrets.store().Values({"KEEP"}).ok());
}

TEST(SecretStore, AMissingOrWrongKeyFailsTheStartNamingTheFile) {
  Secrets secrets(testing::FreshDir());
  ASSERT_TRUE(secrets.store().Set("DB_PASSWORD", kValue, "x").ok());
  const std::string key = secrets.dir() + "/secrets.key";
  std::filesystem::remove(key);
  absl::Status missing = secrets.Open();
  EXPECT_TRUE(absl::IsFailedPrecondition(missing));
  EXPECT_THAT(std::string(missing.message()), HasSubstr(key));
  ASSERT_TRUE(WriteFileAtomically(key, std::string(32, 'k'), 0600).ok());
  absl::Status wrong = secrets.Open();
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong));
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("DB_PASSWORD"));
  EXPECT_THAT(std::string(wrong.message()), Not(HasSubstr(kValue)));
}

}  // namespace
}  // namespace dockyard
