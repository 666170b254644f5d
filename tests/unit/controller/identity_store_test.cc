#include "controller/identity_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/files.h"
#include "common/x509.h"
#include "tests/support/scratch_dir.h"
#include "controller/sqlite_state_store.h"

namespace dockyard {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// A controller's identity as it lives in a data dir: state.db and tls/.
class Identity {
 public:
  explicit Identity(const std::string& dir) : dir_(dir) { Open(); }

  // As after a restart: everything is read back from disk.
  void Reopen() {
    identity_.reset();
    state_.reset();
    Open();
  }

  IdentityStore& store() { return *identity_; }
  const std::string& dir() const { return dir_; }

  // A key and its certificate for agent `name`, enrolled with a fresh token.
  absl::StatusOr<KeyAndCertificate> Enrol(const std::string& name) {
    auto token = identity_->CreateEnrolToken(1, absl::Hours(1));
    if (!token.ok()) return token.status();
    auto key = NewPrivateKeyPem();
    v1::EnrolRequest request;
    request.set_token(token->secret());
    request.set_name(name);
    request.set_csr_pem(*NewCsrPem(*key, name));
    auto enrolled = identity_->Enrol(request);
    if (!enrolled.ok()) return enrolled.status();
    return KeyAndCertificate{*key, enrolled->certificate_pem()};
  }

 private:
  void Open() {
    auto ca = CertificateAuthority::LoadOrCreate(dir_ + "/tls", {});
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    auto state = SqliteStateStore::Open(dir_ + "/state.db");
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
    auto contents = state_->Load();
    ASSERT_TRUE(contents.ok());
    identity_ = std::make_unique<IdentityStore>(state_.get(), ca_.get(), *contents);
  }

  std::string dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<SqliteStateStore> state_;
  std::unique_ptr<IdentityStore> identity_;
};

TEST(IdentityStore, TokenAuthenticatesWithItsRoleAndIsStoredOnlyAsAHash) {
  Identity identity(testing::FreshDir());
  auto secret = identity.store().CreateToken(v1::ROLE_SUBMIT, "ci");
  ASSERT_TRUE(secret.ok());
  auto caller = identity.store().AuthenticateToken(secret->secret());
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->name, "ci");
  EXPECT_EQ(caller->role, v1::ROLE_SUBMIT);
  EXPECT_EQ(caller->Describe(), "token ci (submit)");
  const std::string db = *ReadFileToString(identity.dir() + "/state.db") +
                         ReadFileToString(identity.dir() + "/state.db-wal").value_or("");
  EXPECT_EQ(db.find(secret->secret()), std::string::npos);
  EXPECT_EQ(identity.store().AuthenticateToken("dyt_" + std::string(64, '0')).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(identity.store().AuthenticateToken("hunter2").status().message()),
              HasSubstr("not a Dockyard client token"));
}

TEST(IdentityStore, RevokedTokenIsUnauthenticatedByName) {
  Identity identity(testing::FreshDir());
  auto secret = identity.store().CreateToken(v1::ROLE_READ, "dashboard");
  ASSERT_TRUE(identity.store().RevokeToken("dashboard").ok());
  auto caller = identity.store().AuthenticateToken(secret->secret());
  EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(caller.status().message()), HasSubstr("dashboard was revoked"));
  EXPECT_EQ(identity.store().RevokeToken("dashboard").code(), absl::StatusCode::kNotFound);
}

TEST(IdentityStore, EnrolmentTokenHasLimitedUsesAndExpires) {
  Identity identity(testing::FreshDir());
  auto twice = identity.store().CreateEnrolToken(2, absl::Hours(1));
  ASSERT_TRUE(twice.ok());
  auto enrol = [&](const std::string& token, const std::string& name) {
    v1::EnrolRequest request;
    request.set_token(token);
    request.set_name(name);
    request.set_csr_pem(*NewCsrPem(*NewPrivateKeyPem(), name));
    return identity.store().Enrol(request).status();
  };
  EXPECT_TRUE(enrol(twice->secret(), "a").ok());
  EXPECT_TRUE(enrol(twice->secret(), "b").ok());
  absl::Status third = enrol(twice->secret(), "c");
  EXPECT_EQ(third.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(third.message()), HasSubstr("used up"));

  auto brief = identity.store().CreateEnrolToken(5, absl::Milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  absl::Status late = enrol(brief->secret(), "d");
  EXPECT_THAT(std::string(late.message()), HasSubstr("has expired"));
  EXPECT_EQ(enrol("dye_nonsense", "e").code(), absl::StatusCode::kUnauthenticated);
}

TEST(IdentityStore, EnrolledNameIsBoundToItsCertificateUntilRevoked) {
  Identity identity(testing::FreshDir());
  auto first = identity.Enrol("builder");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(identity.store().AuthenticateAgent(first->certificate_pem)->name, "builder");

  auto second = identity.Enrol("builder");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);

  ASSERT_TRUE(identity.store().RevokeAgent("builder").ok());
  EXPECT_THAT(std::string(identity.store().AuthenticateAgent(first->certificate_pem).status().message()),
              HasSubstr("was revoked"));
  // A new enrolment after revocation gets a new certificate; the old one stays refused.
  auto again = identity.Enrol("builder");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(identity.store().AuthenticateAgent(again->certificate_pem).ok());
  EXPECT_THAT(std::string(identity.store().AuthenticateAgent(first->certificate_pem).status().message()),
              HasSubstr("replaced by a newer enrolment"));
}

TEST(IdentityStore, CertificateOfAnotherCaIsRefused) {
  Identity identity(testing::FreshDir());
  auto other = NewCertificateAuthority("other", absl::Hours(1));
  CertificateRequest request;
  request.common_name = "builder";
  request.client = true;
  auto cert = IssueForKey(*other, *NewPrivateKeyPem(), request);
  auto caller = identity.store().AuthenticateAgent(*cert);
  EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(caller.status().message()), HasSubstr("certificate not issued by this controller"));
}

TEST(IdentityStore, TokensEnrolmentsAndTheCaSurviveARestart) {
  Identity identity(testing::FreshDir());
  const std::string ca = *ReadFileToString(identity.dir() + "/tls/ca.crt");
  auto token = identity.store().CreateToken(v1::ROLE_ADMIN, "ops");
  auto agent = identity.Enrol("builder");
  ASSERT_TRUE(agent.ok());
  identity.Reopen();
  EXPECT_EQ(*ReadFileToString(identity.dir() + "/tls/ca.crt"), ca);
  EXPECT_EQ(identity.store().AuthenticateToken(token->secret())->role, v1::ROLE_ADMIN);
  EXPECT_EQ(identity.store().AuthenticateAgent(agent->certificate_pem)->name, "builder");
  EXPECT_EQ(identity.Enrol("builder").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(IdentityStore, FirstAdminTokenIsWrittenOnceReadableByTheOwnerOnly) {
  Identity identity(testing::FreshDir());
  const std::string path = identity.dir() + "/admin.token";
  ASSERT_TRUE(identity.store().EnsureAdminToken(path).ok());
  const std::string token = *ReadFirstLine(path);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(identity.store().AuthenticateToken(token)->role, v1::ROLE_ADMIN);
  identity.Reopen();
  ASSERT_TRUE(identity.store().EnsureAdminToken(path).ok());
  EXPECT_EQ(*ReadFirstLine(path), token);
}

}  // namespace
}  // namespace dockyard
