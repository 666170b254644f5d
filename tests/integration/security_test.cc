// The trust boundary with real processes on loopback: TLS by default, agents that
// enrol once and then are their certificate, client tokens with roles, revocation,
// and secrets that never show in a log, `ps` or an error.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/x509.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Agent names unique to this test process (see UniqueName).
std::string N(const std::string& base) { return UniqueName(base); }

std::string RunIdFrom(const std::string& cli_out) {
  const size_t pos = cli_out.find("run ");
  if (pos == std::string::npos) return "";
  return cli_out.substr(pos + 4, cli_out.find(' ', pos + 4) - pos - 4);
}

std::string FirstLine(const std::string& path) {
  std::string text = ReadFile(path);
  return text.substr(0, text.find('\n'));
}

// True when `dockyard agents` lists `agent` as connected.
bool Connected(Cluster& cluster, const std::string& agent) {
  std::istringstream lines(cluster.Cli({"agents"}).out);
  std::string name, state;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    if (words >> name >> state && name == agent) return state == "connected";
  }
  return false;
}

class Security : public ::testing::Test {
 protected:
  void SetUp() override { cluster_.StartController(); }

  std::string Pipeline(const std::string& name, const std::string& run) {
    return cluster_.WriteFile(name + ".yml", absl::StrCat("name: ", name, "\nstages:\n  - name: s\n    image: dockyard/busybox\n"
                                                          "    run: ", run, "\n"));
  }

  Cluster cluster_;
};

TEST_F(Security, PlaintextClientIsRefusedWithAHintAndNothingIsStored) {
  const std::string file = Pipeline("plain", "echo hi");
  const std::string command = absl::StrCat(Bin("cli/dockyard"), " --controller=", cluster_.address(),
                                           " --insecure run ", file, " 2>&1");
  const std::string out = Shell(command + "; echo exit=$?");
  EXPECT_THAT(out, HasSubstr("exit=3"));
  EXPECT_THAT(out, HasSubstr("drop --insecure"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).err, HasSubstr("no run"));
}

TEST_F(Security, CliWithoutATokenIsRefusedAndToldWhatToSet) {
  CliResult r = cluster_.CliWithToken("", {"run", Pipeline("notoken", "echo hi")});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, HasSubstr("no token: set DOCKYARD_TOKEN"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).err, HasSubstr("no run"));
  EXPECT_THAT(cluster_.controller().Log(), HasSubstr("audit: SubmitRun by an unauthenticated caller"));
}

TEST_F(Security, AgentWithACertificateFromAnotherCaIsRefused) {
  // A perfectly valid certificate for the name, from a CA this controller never saw.
  auto other_ca = NewCertificateAuthority("someone else's CA", absl::Hours(1));
  ASSERT_TRUE(other_ca.ok());
  auto key = NewPrivateKeyPem();
  CertificateRequest request;
  request.common_name = N("intruder");
  request.client = true;
  auto cert = IssueForKey(*other_ca, *key, request);
  ASSERT_TRUE(cert.ok());
  const std::string identity = cluster_.dir() + "/agent-" + N("intruder") + "/identity";
  fs::create_directories(identity);
  std::ofstream(identity + "/agent.key") << *key;
  std::ofstream(identity + "/agent.crt") << *cert;
  fs::copy_file(cluster_.ca_file(), identity + "/ca.crt");

  Process& intruder = cluster_.StartAgent({.name = N("intruder"), .labels = {"linux"}});
  EXPECT_TRUE(Eventually([&] { return intruder.Log().find("certificate not issued by this controller") !=
                                      std::string::npos; },
                         absl::Seconds(10)))
      << intruder.Log();
  EXPECT_THAT(cluster_.Cli({"agents"}).out, Not(HasSubstr(N("intruder"))));
  EXPECT_THAT(cluster_.controller().Log(), HasSubstr("audit: refused a client certificate"));
}

TEST_F(Security, EnrolmentTokenWorksItsAllowedUsesAndNotAfterItExpires) {
  const std::string twice = cluster_.CreateEnrolToken(/*uses=*/2);
  for (const char* name : {"e1", "e2", "e3"}) {
    cluster_.StartAgent({.name = N(name), .flags = {"--enrol_token_file=" + twice}});
  }
  // Started together, so any two of them may be the ones that enrol: those two
  // connect, and the third finds the token used up and exits.
  std::string refused;
  EXPECT_TRUE(Eventually(
      [&] {
        int connected = 0;
        refused.clear();
        for (const char* name : {"e1", "e2", "e3"}) {
          if (Connected(cluster_, N(name))) {
            ++connected;
          } else if (!cluster_.agent(N(name)).Running()) {
            refused = N(name);
          }
        }
        return connected == 2 && !refused.empty();
      },
      absl::Seconds(30)));
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(cluster_.agent(refused).Wait(absl::Seconds(5)), 1);
  EXPECT_THAT(cluster_.agent(refused).Log(), HasSubstr("is used up"));

  const std::string brief = cluster_.CreateEnrolToken(/*uses=*/5, "1s");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  cluster_.StartAgent({.name = N("late"), .flags = {"--enrol_token_file=" + brief}});
  EXPECT_EQ(cluster_.agent(N("late")).Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(cluster_.agent(N("late")).Log(), HasSubstr("has expired"));
  EXPECT_THAT(cluster_.Cli({"agents"}).out, Not(HasSubstr(N("late"))));
}

TEST_F(Security, NobodyTakesAnEnrolledNameAndTheLiveSessionFinishesItsStage) {
  cluster_.StartAgent({.name = N("builder"), .labels = {"linux"}});
  cluster_.WaitForAgents(1);
  auto run = cluster_.SpawnCli({"run", Pipeline("long", "sleep 4; echo finished")});
  cluster_.WaitForStatus("1", "running");

  // Another host enrolling under the same name.
  const std::string token = cluster_.CreateEnrolToken();
  Process impostor({Bin("agent/dockyard-agent"), "--controller=" + cluster_.address(), "--name=" + N("builder"),
                    "--work_dir=" + cluster_.dir() + "/impostor", "--enrol_token_file=" + token,
                    "--ca_file=" + cluster_.ca_file()},
                   cluster_.dir() + "/impostor.log");
  EXPECT_EQ(impostor.Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(impostor.Log(), HasSubstr("agent name " + N("builder") + " is enrolled with another certificate"));

  // A copy of the real agent's identity, started while the real one is alive.
  fs::create_directories(cluster_.dir() + "/twin");
  fs::copy(cluster_.dir() + "/agent-" + N("builder") + "/identity", cluster_.dir() + "/twin/identity",
           fs::copy_options::recursive);
  Process twin({Bin("agent/dockyard-agent"), "--controller=" + cluster_.address(), "--name=" + N("builder"),
                "--work_dir=" + cluster_.dir() + "/twin"},
               cluster_.dir() + "/twin.log");
  EXPECT_TRUE(Eventually([&] { return twin.Log().find("already has a live session") != std::string::npos; },
                         absl::Seconds(10)))
      << twin.Log();
  twin.Signal(SIGKILL);
  twin.Wait();

  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("finished"));
  const std::string status = cluster_.Cli({"status", "1"}).out;
  EXPECT_THAT(status, HasSubstr("attempt 1"));
  EXPECT_THAT(status, Not(HasSubstr("attempt 2")));
}

TEST_F(Security, RevokedAgentIsDisconnectedAndItsRunningStageRequeued) {
  cluster_.StartAgent({.name = N("doomed"), .labels = {"linux"}});
  cluster_.WaitForAgents(1);
  auto run = cluster_.SpawnCli({"run", Pipeline("requeue", "sleep 3; echo done on $(hostname)")});
  cluster_.WaitForStatus("1", "running");
  cluster_.StartAgent({.name = N("spare"), .labels = {"linux"}});
  cluster_.WaitForAgents(2);

  CliResult revoked = cluster_.Cli({"agents", "revoke", N("doomed")});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_THAT(revoked.out, HasSubstr("1 running stage(s) re-queued"));
  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  const std::string status = cluster_.Cli({"status", "1"}).out;
  EXPECT_EQ(AgentOfStage(status, "s"), N("spare")) << status;
  EXPECT_THAT(status, HasSubstr("attempt 2"));
  EXPECT_FALSE(Connected(cluster_, N("doomed")));
  // It was told to stop the lost attempt before its session closed.
  EXPECT_TRUE(Eventually([] { return Shell("docker ps -q --filter label=dockyard.agent=" + N("doomed")).empty(); },
                         absl::Seconds(5)));
  EXPECT_TRUE(Eventually([&] { return cluster_.agent(N("doomed")).Log().find("was revoked") != std::string::npos; },
                         absl::Seconds(10)));
}

TEST_F(Security, RolesLimitWhatEachTokenMayDo) {
  cluster_.StartAgent({.name = N("worker"), .labels = {"linux"}, .slots = 2});
  cluster_.WaitForAgents(1);
  const std::string reader = cluster_.CreateToken("read", "dashboard");
  const std::string alice = cluster_.CreateToken("submit", "alice");
  const std::string bob = cluster_.CreateToken("submit", "bob");

  // read: may look, never act.
  CliResult r = cluster_.CliWithToken(reader, {"run", Pipeline("ro", "echo hi")});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, HasSubstr("token dashboard lacks role submit"));
  EXPECT_EQ(cluster_.CliWithToken(reader, {"agents"}).exit_code, 0);
  CliResult drain = cluster_.CliWithToken(reader, {"agents", "drain", N("worker")});
  EXPECT_EQ(drain.exit_code, 4);
  EXPECT_THAT(drain.err, HasSubstr("lacks role admin"));

  // submit: runs its own; cannot cancel bob's or drain.
  auto bobs = cluster_.SpawnCli({"run", Pipeline("bobs", "sleep 30")}, bob);
  cluster_.WaitForStatus("1", "running");
  CliResult cancel = cluster_.CliWithToken(alice, {"cancel", "1"});
  EXPECT_EQ(cancel.exit_code, 4);
  EXPECT_THAT(cancel.err, HasSubstr("run 1 was submitted by bob"));
  EXPECT_EQ(cluster_.CliWithToken(reader, {"cancel", "1"}).exit_code, 4);
  EXPECT_EQ(cluster_.CliWithToken(alice, {"agents", "drain", N("worker")}).exit_code, 4);
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, HasSubstr("running"));
  CliResult own = cluster_.CliWithToken(alice, {"run", Pipeline("alices", "echo mine")});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_EQ(cluster_.CliWithToken(alice, {"cancel", RunIdFrom(own.out)}).exit_code, 0);

  // admin: may cancel anyone's run and drain.
  EXPECT_EQ(cluster_.Cli({"cancel", "1"}).exit_code, 0);
  EXPECT_EQ(bobs->Wait(absl::Seconds(30)), 5);  // cancelled
  EXPECT_EQ(cluster_.Cli({"agents", "drain", N("worker")}).exit_code, 0);
  EXPECT_THAT(cluster_.controller().Log(), HasSubstr("audit: CancelRun 1 by token alice (submit)"));
}

TEST_F(Security, RevokedTokenIsRefused) {
  const std::string carol = cluster_.CreateToken("read", "carol");
  EXPECT_EQ(cluster_.CliWithToken(carol, {"agents"}).exit_code, 0);
  ASSERT_EQ(cluster_.Cli({"tokens", "revoke", "carol"}).exit_code, 0);
  CliResult r = cluster_.CliWithToken(carol, {"agents"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, HasSubstr("token carol was revoked"));
  EXPECT_THAT(cluster_.Cli({"tokens", "list"}).out, HasSubstr("revoked"));
}

TEST_F(Security, NoSecretAppearsInLogsPsOrErrors) {
  const std::string admin = FirstLine(cluster_.admin_token_file());
  const std::string submit_file = cluster_.CreateToken("submit", "ci");
  const std::string submit = FirstLine(submit_file);
  const std::string enrol_file = cluster_.CreateEnrolToken();
  const std::string enrol = FirstLine(enrol_file);
  cluster_.StartAgent({.name = N("quiet"), .labels = {"linux"}, .flags = {"--enrol_token_file=" + enrol_file}});
  cluster_.WaitForAgents(1);
  const std::string agent_key = ReadFile(cluster_.dir() + "/agent-" + N("quiet") + "/identity/agent.key");
  const std::string ca_key = ReadFile(cluster_.dir() + "/controller/tls/ca.key");
  ASSERT_FALSE(admin.empty());
  ASSERT_FALSE(enrol.empty());

  auto run = cluster_.SpawnCli({"run", Pipeline("quiet", "sleep 2; echo ok")}, submit_file);
  cluster_.WaitForStatus("1", "running");
  const std::string ps = Shell("ps -eo args");
  EXPECT_THAT(ps, HasSubstr("dockyard-agent"));
  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();

  // Errors that involve secrets: a wrong token, a used enrolment token.
  const std::string wrong = cluster_.WriteFile("wrong.token", "dyt_" + std::string(64, 'f') + "\n");
  CliResult refused = cluster_.CliWithToken(wrong, {"agents"});
  EXPECT_EQ(refused.exit_code, 4);
  Process again({Bin("agent/dockyard-agent"), "--controller=" + cluster_.address(), "--name=" + N("again"),
                 "--work_dir=" + cluster_.dir() + "/again", "--enrol_token_file=" + enrol_file,
                 "--ca_file=" + cluster_.ca_file()},
                cluster_.dir() + "/again.log");
  EXPECT_EQ(again.Wait(absl::Seconds(20)), 1);

  const std::string everything = absl::StrCat(cluster_.controller().Log(), cluster_.agent(N("quiet")).Log(),
                                              again.Log(), run->Log(), refused.err, refused.out, ps);
  for (const std::string& secret : {admin, submit, enrol, std::string(64, 'f')}) {
    EXPECT_THAT(everything, Not(HasSubstr(secret)));
  }
  // Keys: the base64 body of each PEM.
  for (const std::string& pem : {agent_key, ca_key}) {
    const std::string body = pem.substr(pem.find('\n') + 1, 40);
    EXPECT_THAT(everything, Not(HasSubstr(body)));
  }
  EXPECT_EQ(fs::status(cluster_.dir() + "/agent-" + N("quiet") + "/identity/agent.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(fs::status(cluster_.admin_token_file()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(fs::status(cluster_.dir() + "/controller/tls/ca.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(Security, RestartedControllerKeepsItsCaTokensAndEnrolledAgents) {
  const std::string ca = ReadFile(cluster_.ca_file());
  const std::string reader = cluster_.CreateToken("read", "keeper");
  cluster_.StartAgent({.name = N("steady"), .labels = {"linux"}});
  cluster_.WaitForAgents(1);
  const std::string cert = ReadFile(cluster_.dir() + "/agent-" + N("steady") + "/identity/agent.crt");

  cluster_.controller().Signal(SIGTERM);
  ASSERT_EQ(cluster_.controller().Wait(), 0);
  cluster_.StartController();
  EXPECT_EQ(ReadFile(cluster_.ca_file()), ca);
  EXPECT_EQ(cluster_.CliWithToken(reader, {"agents"}).exit_code, 0);
  // The agent reconnects by itself with the certificate it has, no new enrolment.
  cluster_.WaitForAgents(1);
  EXPECT_EQ(ReadFile(cluster_.dir() + "/agent-" + N("steady") + "/identity/agent.crt"), cert);
  CliResult r = cluster_.Cli({"run", Pipeline("after", "echo still trusted")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("still trusted"));
}

TEST(InsecureMode, WorksOnlyWhenEverySideAsksForItAndSaysSo) {
  Cluster cluster;
  cluster.UseInsecure();
  cluster.StartController();
  cluster.StartAgent({.name = N("plain"), .labels = {"linux"}});
  cluster.WaitForAgents(1);
  CliResult r = cluster.Cli({"run", cluster.WriteFile("p.yml", "name: p\nstages:\n  - name: s\n"
                                                               "    image: dockyard/busybox\n    run: echo plain\n")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(cluster.controller().Log(), HasSubstr("--insecure: plain text"));
  EXPECT_THAT(cluster.agent(N("plain")).Log(), HasSubstr("--insecure: plain text"));
  EXPECT_FALSE(fs::exists(cluster.dir() + "/controller/admin.token"));
}

}  // namespace
}  // namespace dockyard::testing
