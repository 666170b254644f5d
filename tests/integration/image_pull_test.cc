// Images from a registry, with a real registry (Debian's docker-registry) on
// loopback: an image absent on the agent is pulled and run, `pull: never` refuses
// it, `pull: always` replaces a local image of the same name, and a registry that
// wants a login gets it from a controller secret or the agent's auth file — never
// from the pipeline — while the password shows in no log.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"
#include "tests/support/local_registry.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Pipeline(const std::string& image, const std::string& more) {
  return absl::StrCat("name: pull\nstages:\n  - name: run\n    image: ", image, "\n", more,
                      "    run: cat /marker 2>/dev/null || echo no marker here\n");
}

bool ImageOnEngine(const std::string& image) {
  return Shell("docker image inspect " + image + " >/dev/null 2>&1 && echo yes") == "yes\n";
}

class ImagePull : public ::testing::Test {
 protected:
  void SetUp() override { cluster_.StartController(); }
  void TearDown() override {
    for (const std::string& image : pushed_) Shell("docker rmi -f " + image + " >/dev/null 2>&1");
  }
  std::string StartAgent(const std::vector<std::string>& flags = {}) {
    const std::string name = UniqueName("puller");
    cluster_.StartAgent({.name = name, .flags = flags});
    cluster_.WaitForAgents(1);
    return name;
  }
  std::string Push(LocalRegistry& registry, const std::string& repository, const std::string& marker) {
    pushed_.push_back(registry.Push(repository, marker));
    return pushed_.back();
  }
  CliResult Run(const std::string& pipeline) { return cluster_.Cli({"run", cluster_.WriteFile("p.yml", pipeline)}); }
  // `dockyard secrets set NAME` with `value` on stdin, from a 0600 file removed after.
  void SetSecret(const std::string& name, const std::string& value) {
    const std::string file = cluster_.WriteFile("secret-" + name, value);
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    ASSERT_EQ(cluster_.CliWithToken(cluster_.admin_token_file(), {"secrets", "set", name}, absl::Minutes(1), file)
                  .exit_code,
              0);
    fs::remove(file);
  }

  Cluster cluster_;
  std::vector<std::string> pushed_;
};

TEST_F(ImagePull, AnImageAbsentOnTheAgentIsPulledRunAndThenFoundLocally) {
  LocalRegistry registry(/*with_login=*/false);
  const std::string marker = UniqueName("pulled-marker");
  const std::string image = Push(registry, "team/app:1", marker);
  ASSERT_FALSE(ImageOnEngine(image));
  StartAgent();

  CliResult first = Run(Pipeline(image, ""));
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.out, HasSubstr("[dockyard] image " + image + ": pulling from " + registry.address() +
                                   " with no login (pull: if-not-present)"));
  EXPECT_THAT(first.out, HasSubstr("[dockyard] pull: Status: Downloaded newer image for " + image));
  EXPECT_THAT(first.out, HasSubstr("run | " + marker + "\n"));
  EXPECT_TRUE(ImageOnEngine(image));

  // Present now: the next run does not ask the registry.
  CliResult second = Run(Pipeline(image, ""));
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_THAT(second.out, Not(HasSubstr("pulling from")));
  EXPECT_THAT(second.out, HasSubstr("run | " + marker + "\n"));
}

TEST_F(ImagePull, PullNeverFailsClearlyWhenTheImageIsAbsent) {
  LocalRegistry registry(/*with_login=*/false);
  const std::string image = Push(registry, "team/app:never", UniqueName("never-marker"));
  const std::string agent = StartAgent();

  CliResult r = Run(Pipeline(image, "    pull: never\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out + r.err, HasSubstr("image " + image + " is not on agent " + agent +
                                       " and the stage says pull: never"));
  EXPECT_FALSE(ImageOnEngine(image));
  EXPECT_THAT(registry.Log(), Not(HasSubstr("GET /v2/team/app/manifests")));
}

TEST_F(ImagePull, PullAlwaysReplacesALocalImageOfTheSameNameWhichIfNotPresentWouldRun) {
  LocalRegistry registry(/*with_login=*/false);
  const std::string marker = UniqueName("registry-marker");
  const std::string image = Push(registry, "team/app:moving", marker);
  // The engine has another image under that name (an old pull, a local build).
  ASSERT_EQ(Shell("docker tag dockyard/busybox " + image + " && echo ok"), "ok\n");
  StartAgent();

  CliResult local = Run(Pipeline(image, ""));
  ASSERT_EQ(local.exit_code, 0) << local.out << local.err;
  EXPECT_THAT(local.out, HasSubstr("run | no marker here"));
  EXPECT_THAT(local.out, Not(HasSubstr("pulling from")));

  CliResult always = Run(Pipeline(image, "    pull: always\n"));
  ASSERT_EQ(always.exit_code, 0) << always.out << always.err;
  EXPECT_THAT(always.out, HasSubstr("with no login (pull: always)"));
  EXPECT_THAT(always.out, HasSubstr("run | " + marker + "\n"));
}

TEST_F(ImagePull, ALaterStageFindingAStaleCopyPullsWhatTheRunPinned) {
  LocalRegistry registry(/*with_login=*/false);
  const std::string marker = UniqueName("pinned-marker");
  const std::string image = Push(registry, "team/app:pinned", marker);
  StartAgent();
  auto run = cluster_.SpawnCli({"run", cluster_.WriteFile("p.yml", absl::StrCat(
      "name: pinned\nstages:\n  - name: first\n    image: ", image, "\n    run: cat /marker; sleep 3\n"
      "  - name: second\n    needs: [first]\n    image: ", image, "\n    run: cat /marker\n"))});
  cluster_.WaitForStatus("1", "first                running");
  // Mid-run the host's copy goes stale (another pipeline tagged something else so).
  ASSERT_EQ(Shell("docker tag dockyard/busybox " + image + " && echo ok"), "ok\n");
  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("first  | " + marker + "\n"));
  EXPECT_THAT(run->Log(), ::testing::ContainsRegex("second \\| \\[dockyard\\] image [^ ]+ is sha256:[0-9a-f]{64} here, "
                                                   "but the run pinned sha256:[0-9a-f]{64}: pulling it again"));
  EXPECT_THAT(run->Log(), ::testing::ContainsRegex("second \\| \\[dockyard\\] image [^ ]+ is sha256:[0-9a-f]{64}, "
                                                   "as pinned for the run"));
  EXPECT_THAT(run->Log(), HasSubstr("second | " + marker + "\n"));
}

TEST_F(ImagePull, ARegistryLoginComesFromAControllerSecretAndNoLogShowsThePassword) {
  LocalRegistry registry(/*with_login=*/true);
  const std::string image = Push(registry, "private/app:1", UniqueName("private-marker"));
  const std::string agent = StartAgent();

  // No login: the registry's refusal, and what to do about it.
  CliResult anonymous = Run(Pipeline(image, ""));
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous.out << anonymous.err;
  EXPECT_THAT(anonymous.out, HasSubstr("pulling " + image + " failed: "));
  EXPECT_THAT(anonymous.out, HasSubstr("the registry wants a login: name a controller secret holding "
                                       "username:password in the stage's pull_secret"));

  // A secret the controller does not have is refused at submission.
  CliResult unknown = Run(Pipeline(image, "    pull_secret: REGISTRY_LOGIN\n"));
  EXPECT_EQ(unknown.exit_code, 3) << unknown.out << unknown.err;
  EXPECT_THAT(unknown.err, HasSubstr("stage run: pull_secret: "));

  // A wrong password: the registry's refusal, still without the hint about logins.
  const std::string wrong_password = "wrong-" + registry.password();
  SetSecret("REGISTRY_LOGIN", registry.user() + ":" + wrong_password);
  CliResult wrong = Run(Pipeline(image, "    pull_secret: REGISTRY_LOGIN\n"));
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  EXPECT_THAT(wrong.out, HasSubstr("pulling " + image + " failed: "));
  EXPECT_THAT(wrong.out, HasSubstr("the stage's pull secret (user " + registry.user() + ")"));

  SetSecret("REGISTRY_LOGIN", registry.user() + ":" + registry.password());
  CliResult logged_in = Run(Pipeline(image, "    pull_secret: REGISTRY_LOGIN\n"));
  ASSERT_EQ(logged_in.exit_code, 0) << logged_in.out << logged_in.err;
  EXPECT_THAT(logged_in.out, HasSubstr("pulling from " + registry.address() + " with the stage's pull secret (user " +
                                       registry.user() + ")"));
  EXPECT_THAT(logged_in.out, HasSubstr("run | private-marker"));
  // The login is not the stage's environment.
  CliResult env = Run(absl::StrCat("name: env\nstages:\n  - name: run\n    image: ", image,
                                   "\n    pull_secret: REGISTRY_LOGIN\n    run: env\n"));
  ASSERT_EQ(env.exit_code, 0) << env.out << env.err;
  EXPECT_THAT(env.out, Not(HasSubstr("REGISTRY_LOGIN")));

  const std::string status = cluster_.Cli({"status", "4", "--long"}).out;
  for (const std::string& password : {registry.password(), wrong_password}) {
    for (const auto& [where, text] : std::vector<std::pair<std::string, std::string>>{
             {"run outputs", anonymous.out + anonymous.err + wrong.out + wrong.err + logged_in.out + env.out},
             {"status", status},
             {"stage logs", cluster_.Cli({"logs", "3", "run"}).out + cluster_.Cli({"logs", "4", "run"}).out},
             {"agent log", cluster_.agent(agent).Log()},
             {"controller log", cluster_.controller().Log()},
             {"ps", Shell("ps -eo args")}}) {
      EXPECT_THAT(text, Not(HasSubstr(password))) << where;
    }
  }
}

TEST_F(ImagePull, TheAgentsRegistryAuthFileLogsInAndIsRefusedWhenOthersMayReadIt) {
  LocalRegistry registry(/*with_login=*/true);
  const std::string image = Push(registry, "private/app:file", UniqueName("file-marker"));
  // Docker's own config.json form, as `docker login` writes it.
  const std::string auth_file = cluster_.WriteFile(
      "agent-registry-auth.json",
      absl::StrCat(R"({"auths": {")", registry.address(), R"(": {"auth": ")",
                   absl::Base64Escape(registry.user() + ":" + registry.password()), "\"}}}\n"));
  fs::permissions(auth_file, fs::perms::owner_read | fs::perms::owner_write);
  const std::string agent = StartAgent({"--registry_auth_file=" + auth_file});

  CliResult r = Run(Pipeline(image, ""));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("with the login in " + auth_file + " (user " + registry.user() + ")"));
  EXPECT_THAT(r.out, HasSubstr("run | file-marker"));

  fs::permissions(auth_file, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  CliResult open = Run(Pipeline(image, "    pull: always\n"));
  EXPECT_EQ(open.exit_code, 1) << open.out << open.err;
  EXPECT_THAT(open.out, HasSubstr("registry auth file " + auth_file + " has mode 0644: others may read its "
                                  "passwords, so the agent does not use it (chmod 600 " + auth_file + ")"));
  EXPECT_THAT(r.out + open.out + cluster_.agent(agent).Log(), Not(HasSubstr(registry.password())));
}

}  // namespace
}  // namespace dockyard::testing
