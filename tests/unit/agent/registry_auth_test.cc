// Where an agent's registry logins come from: the registry an image names, the
// agent's auth file (Docker's config.json form, refused when others may read it),
// and a pull secret's "username:password". No message quotes a password.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "agent/image_puller.h"

namespace dockyard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RegistryOf, TheFirstPartIsARegistryOnlyWhenItLooksLikeAHost) {
  EXPECT_EQ(RegistryOf("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000");
  EXPECT_EQ(RegistryOf("registry.example.com/app@sha256:abc"), "registry.example.com");
  EXPECT_EQ(RegistryOf("localhost/app"), "localhost");
  EXPECT_EQ(RegistryOf("team/app:1"), "docker.io");
  EXPECT_EQ(RegistryOf("busybox"), "docker.io");
}

class RegistryAuthFile : public ::testing::Test {
 protected:
  RegistryAuthFile() {
    std::string templ = ::testing::TempDir() + "/registry_auth_XXXXXX";
    dir_ = ::mkdtemp(templ.data());
  }
  ~RegistryAuthFile() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/auth.json";
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(RegistryAuthFile, ReadsDockersFormAndPlainUserAndPassword) {
  const std::string path = Write(R"({"auths": {
    "127.0.0.1:5000": {"auth": ")" + absl::Base64Escape("ci:pa:ss") + R"("},
    "https://index.docker.io/v1/": {"username": "hub-user", "password": "hub-pass"},
    "https://registry.example.com/v2/": {"auth": ")" + absl::Base64Escape("u:p") + R"("}}})");
  auto logins = ReadRegistryAuthFile(path);
  ASSERT_TRUE(logins.ok()) << logins.status();
  EXPECT_EQ(logins->at("127.0.0.1:5000").username, "ci");
  EXPECT_EQ(logins->at("127.0.0.1:5000").password, "pa:ss");
  EXPECT_EQ(logins->at("docker.io").username, "hub-user");
  EXPECT_EQ(logins->at("registry.example.com").password, "p");
}

TEST_F(RegistryAuthFile, NoFileIsNoLogins) {
  auto logins = ReadRegistryAuthFile(dir_ + "/absent.json");
  ASSERT_TRUE(logins.ok()) << logins.status();
  EXPECT_TRUE(logins->empty());
}

TEST_F(RegistryAuthFile, AFileOthersMayReadIsRefused) {
  const std::string path = Write(R"({"auths": {}})", 0640);
  auto logins = ReadRegistryAuthFile(path);
  EXPECT_EQ(logins.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(logins.status().message()), HasSubstr(path + " has mode 0640"));
}

TEST_F(RegistryAuthFile, MalformedFilesAreNamedWithoutTheirSecrets) {
  for (const std::string& text : {std::string("not json hunter2"), std::string(R"({"auths": {"h": "hunter2"}})"),
                                 std::string(R"({"auths": {"h": {"auth": "hunter2!!"}}})"),
                                 R"({"auths": {"h": {"auth": ")" + absl::Base64Escape("hunter2") + "\"}}}"}) {
    auto logins = ReadRegistryAuthFile(Write(text));
    EXPECT_EQ(logins.status().code(), absl::StatusCode::kFailedPrecondition) << text;
    EXPECT_THAT(std::string(logins.status().message()), HasSubstr("registry auth file " + dir_));
    EXPECT_THAT(std::string(logins.status().message()), Not(HasSubstr("hunter2")));
  }
}

TEST(RegistryLogin, IsUsernameColonPassword) {
  auto login = ParseRegistryLogin("ci:with:colons", "r:5000");
  ASSERT_TRUE(login.ok());
  EXPECT_EQ(login->username, "ci");
  EXPECT_EQ(login->password, "with:colons");
  EXPECT_EQ(login->server, "r:5000");
  auto bad = ParseRegistryLogin("hunter2", "r");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace dockyard
