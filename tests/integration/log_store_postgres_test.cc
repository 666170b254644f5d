// The log store's contract (tests/unit/controller/log_store_contract.cc) with the
// logs in a real PostgreSQL and settled attempts archived into a real S3 (Swift),
// plus what the archive itself must do: one blob by digest, no pieces left, and
// never taken for garbage while it is stored but not yet recorded.
#include <memory>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "gtest/gtest.h"

#include "absl/strings/ascii.h"
#include "absl/synchronization/notification.h"
#include "common/files.h"
#include "common/sha256.h"
#include "controller/log_store.h"
#include "controller/postgres_log_backend.h"
#include "controller/state_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/s3_server.h"
#include "tests/unit/controller/log_store_contract.h"

namespace dockyard {
namespace {

using ::dockyard::testing::LogStoreContract;

// A fresh database and bucket, and what opens a log backend over them.
struct Place {
  testing::PostgresDatabase database;
  std::shared_ptr<StateStore> state;
  std::shared_ptr<BlobStore> archive;
};

Place FreshPlace() {
  Place place;
  auto database = testing::CreateDatabase(testing::PostgresForTests(), "logs");
  auto bucket = testing::CreateBucket(testing::S3ForTests(), "logs");
  EXPECT_TRUE(database.ok()) << database.status();
  EXPECT_TRUE(bucket.ok()) << bucket.status();
  if (!database.ok() || !bucket.ok()) return place;
  place.database = *database;
  StateStoreOptions state;
  state.spec = database->url;
  state.password_file = database->password_file;
  auto opened = OpenStateStore(state);
  EXPECT_TRUE(opened.ok()) << opened.status();
  BlobStoreOptions blobs;
  blobs.spec = bucket->url;
  blobs.s3_endpoint = bucket->endpoint;
  blobs.s3_credentials_file = bucket->credentials_file;
  auto archive = OpenBlobStore(blobs, "blobs");
  EXPECT_TRUE(archive.ok()) << archive.status();
  if (opened.ok()) place.state = *std::move(opened);
  if (archive.ok()) place.archive = *std::move(archive);
  return place;
}

std::function<std::unique_ptr<LogBackend>()> FreshLogs() {
  // A backend may outlive the function that made it (the contract's stores take a
  // temporary maker): the places it archives into live as long as the program.
  static auto* places = new std::vector<Place>;
  places->push_back(FreshPlace());
  const Place place = places->back();
  return [place]() -> std::unique_ptr<LogBackend> {
    if (place.state == nullptr || place.archive == nullptr) return nullptr;
    return place.state->NewLogBackend("", place.archive.get());
  };
}

void WaitForArchives(LogBackend& backend) { dynamic_cast<PostgresLogBackend&>(backend).WaitForArchives(); }

INSTANTIATE_TEST_SUITE_P(PostgresAndS3, LogStoreContract,
                         ::testing::Values(testing::LogStoreBackend{"postgres_s3", FreshLogs, WaitForArchives}),
                         [](const auto& info) { return info.param.name; });

int64_t Count(const testing::PostgresDatabase& database, const std::string& sql) {
  auto password = ReadFileToString(database.password_file);
  pqxx::connection connection(database.url + "?password=" + std::string(absl::StripAsciiWhitespace(*password)));
  pqxx::read_transaction tx(connection);
  return tx.exec1(sql)[0].as<int64_t>();
}

TEST(PostgresLogBackend, ASettledAttemptBecomesOneBlobByDigestAndItsPiecesGo) {
  Place place = FreshPlace();
  ASSERT_NE(place.state, nullptr);
  LogStore store(place.state->NewLogBackend("", place.archive.get()));
  v1::StageRef ref;
  ref.set_run_id("1");
  ref.set_stage("build");
  ref.set_attempt(1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  ASSERT_TRUE(store.Append(ref, 1, "two\n").ok());
  EXPECT_EQ(Count(place.database, "SELECT count(*) FROM log_pieces"), 2);
  store.Close(ref);
  WaitForArchives(store.backend());
  EXPECT_EQ(Count(place.database, "SELECT count(*) FROM log_pieces"), 0);
  EXPECT_EQ(Count(place.database, "SELECT count(*) FROM log_archives"), 1);
  EXPECT_TRUE(place.archive->Contains(Sha256Hex("one\ntwo\n")));
}

// A blob store that holds each publish after it is done until the test lets it
// return: the moment between the archive blob's publish and its row.
class HeldPublishes final : public BlobStore {
 public:
  explicit HeldPublishes(BlobStore* inner) : inner_(inner) {}
  absl::Notification published;
  absl::Notification go_on;

  absl::StatusOr<std::unique_ptr<Writer>> NewWriter(const std::string& sha256, int64_t size) override {
    return inner_->NewWriter(sha256, size);
  }
  absl::Status PublishAll(std::vector<std::unique_ptr<Writer>> sealed) override {
    absl::Status st = inner_->PublishAll(std::move(sealed));
    published.Notify();
    go_on.WaitForNotification();
    return st;
  }
  absl::StatusOr<std::unique_ptr<Writer>> NewResumableWriter(const std::string& sha256, int64_t size,
                                                             int64_t offset) override {
    return inner_->NewResumableWriter(sha256, size, offset);
  }
  int64_t PartialSize(const std::string& sha256) override { return inner_->PartialSize(sha256); }
  bool Contains(const std::string& sha256) override { return inner_->Contains(sha256); }
  absl::StatusOr<int64_t> Size(const std::string& sha256) override { return inner_->Size(sha256); }
  absl::StatusOr<std::string> Read(const std::string& sha256, int64_t offset, int64_t max_bytes) override {
    return inner_->Read(sha256, offset, max_bytes);
  }
  std::vector<Listed> List() override { return inner_->List(); }
  absl::Status Remove(const std::string& sha256) override { return inner_->Remove(sha256); }

 private:
  BlobStore* inner_;
};

TEST(PostgresLogBackend, AnArchiveStoredButNotYetRecordedIsAlreadyAmongTheDigestsInUse) {
  Place place = FreshPlace();
  ASSERT_NE(place.state, nullptr);
  HeldPublishes held(place.archive.get());
  LogStore store(place.state->NewLogBackend("", &held));
  v1::StageRef ref;
  ref.set_run_id("1");
  ref.set_stage("build");
  ref.set_attempt(1);
  ASSERT_TRUE(store.Append(ref, 0, "one\n").ok());
  store.Close(ref);
  held.published.WaitForNotification();  // in the blob store, no row yet
  ASSERT_EQ(Count(place.database, "SELECT count(*) FROM log_archives"), 0);
  auto during = store.backend().ArchiveDigests({});
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->count(Sha256Hex("one\n")), 1u) << "the blob collector would take it for garbage";
  held.go_on.Notify();
  WaitForArchives(store.backend());
  auto after = store.backend().ArchiveDigests({});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->count(Sha256Hex("one\n")), 1u);
  EXPECT_EQ(after->size(), 1u);
}

}  // namespace
}  // namespace dockyard
