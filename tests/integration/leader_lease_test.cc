// The leader lease on a real PostgreSQL (scale-out suite): one holder at a time, a
// standby takes over only once the holder's term has run out by the database's clock,
// and the old holder learns at its next renewal that it must step down.
#include <memory>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "absl/strings/ascii.h"
#include "common/files.h"
#include "controller/leader_lease.h"
#include "controller/state_store.h"
#include "tests/support/postgres_server.h"

namespace dockyard {
namespace {

using ::testing::HasSubstr;

// A migrated database and a connection to it per contender.
class LeaderLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto database = testing::CreateDatabase(testing::PostgresForTests(), "lease");
    ASSERT_TRUE(database.ok()) << database.status();
    StateStoreOptions options;
    options.spec = database->url;
    options.password_file = database->password_file;
    auto migrated = OpenStateStore(options);
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    auto password = ReadFileToString(database->password_file);
    ASSERT_TRUE(password.ok());
    connect_ = database->url + "?password=" + std::string(absl::StripAsciiWhitespace(*password));
  }
  std::unique_ptr<PostgresConnection> Connect() {
    return std::make_unique<PostgresConnection>(connect_, "test database");
  }
  std::string connect_;
};

TEST_F(LeaderLeaseTest, OfTwoControllersStartingTogetherExactlyOneLeads) {
  auto a_db = Connect();
  auto b_db = Connect();
  LeaderLease a(a_db.get(), "a", "127.0.0.1:7001", absl::Seconds(10));
  LeaderLease b(b_db.get(), "b", "127.0.0.1:7002", absl::Seconds(10));
  absl::StatusOr<bool> a_leads;
  std::thread contender([&] { a_leads = a.TryAcquire(); });
  absl::StatusOr<bool> b_leads = b.TryAcquire();
  contender.join();
  ASSERT_TRUE(a_leads.ok()) << a_leads.status();
  ASSERT_TRUE(b_leads.ok()) << b_leads.status();
  EXPECT_NE(*a_leads, *b_leads);
  auto leader = b.Leader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(*leader, *a_leads ? "127.0.0.1:7001" : "127.0.0.1:7002");
}

TEST_F(LeaderLeaseTest, AStandbyTakesOverOnlyOnceTheTermRanOutAndTheOldLeaderMustStepDown) {
  auto a_db = Connect();
  auto b_db = Connect();
  LeaderLease a(a_db.get(), "a", "127.0.0.1:7001", absl::Seconds(1));
  LeaderLease b(b_db.get(), "b", "127.0.0.1:7002", absl::Seconds(1));
  ASSERT_TRUE(*a.TryAcquire());
  const int64_t first_term = a.epoch();
  EXPECT_FALSE(*b.TryAcquire());
  // The leader is paused (SIGSTOP, a long GC, a cut network) past its term...
  absl::SleepFor(absl::Milliseconds(1300));
  EXPECT_EQ(*b.Leader(), "");
  ASSERT_TRUE(*b.TryAcquire());
  EXPECT_GT(b.epoch(), first_term);
  EXPECT_EQ(*a.Leader(), "127.0.0.1:7002");
  // ...and on waking finds the lease gone at its next renewal.
  const absl::Status renewed = a.Renew();
  EXPECT_EQ(renewed.code(), absl::StatusCode::kFailedPrecondition) << renewed;
  EXPECT_THAT(std::string(renewed.message()), HasSubstr("stepping down"));
  EXPECT_FALSE(*a.TryAcquire());  // nor can it take the lease back while b renews
  EXPECT_TRUE(b.Renew().ok());
}

TEST_F(LeaderLeaseTest, ALeaderThatRenewsInTimeKeepsTheLease) {
  auto a_db = Connect();
  auto b_db = Connect();
  LeaderLease a(a_db.get(), "a", "127.0.0.1:7001", absl::Seconds(1));
  LeaderLease b(b_db.get(), "b", "127.0.0.1:7002", absl::Seconds(1));
  ASSERT_TRUE(*a.TryAcquire());
  for (int i = 0; i < 8; ++i) {  // 2.4 s: more than two terms
    absl::SleepFor(absl::Milliseconds(300));
    ASSERT_TRUE(a.Renew().ok());
    EXPECT_FALSE(*b.TryAcquire());
  }
  EXPECT_EQ(*b.Leader(), "127.0.0.1:7001");
}

TEST_F(LeaderLeaseTest, ALeaseReleasedOnACleanStopIsTakenAtOnce) {
  auto a_db = Connect();
  auto b_db = Connect();
  LeaderLease a(a_db.get(), "a", "127.0.0.1:7001", absl::Seconds(60));
  LeaderLease b(b_db.get(), "b", "127.0.0.1:7002", absl::Seconds(60));
  ASSERT_TRUE(*a.TryAcquire());
  EXPECT_FALSE(*b.TryAcquire());
  ASSERT_TRUE(a.Release().ok());
  EXPECT_TRUE(*b.TryAcquire());  // no minute-long wait
  EXPECT_EQ(a.Renew().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LeaderLeaseTest, AnExpiredLeaseCannotBeRenewedEvenWhenNobodyTookIt) {
  auto a_db = Connect();
  LeaderLease a(a_db.get(), "a", "127.0.0.1:7001", absl::Milliseconds(300));
  ASSERT_TRUE(*a.TryAcquire());
  absl::SleepFor(absl::Milliseconds(500));
  // Past its term a standby may already be acting on the lease: no quiet renewal.
  EXPECT_EQ(a.Renew().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(*a.TryAcquire());  // taking it again is explicit, with a new epoch
}

}  // namespace
}  // namespace dockyard
