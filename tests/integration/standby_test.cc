// Two controllers on one PostgreSQL and one bucket (scale-out suite only): the second
// stands by without serving until the first's lease runs out, then leads with the
// same runs; the first, paused past its lease and woken, steps down instead of
// serving or writing beside it.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A standby for `cluster`'s controller: the leader's CA, secrets key and admin token
// (a deployment's identity is shared), the same database and bucket, `listen`.
std::unique_ptr<Process> StartStandby(Cluster& cluster, const std::string& listen) {
  const std::string dir = cluster.dir() + "/standby";
  fs::create_directories(dir);
  for (const char* item : {"tls", "secrets.key", "admin.token"}) {
    fs::copy(cluster.dir() + "/controller/" + item, dir + "/" + item, fs::copy_options::recursive);
  }
  std::vector<std::string> argv = {Bin("controller/dockyard-controller"), "--listen=" + listen, "--data_dir=" + dir,
                                   "--address_file=" + dir + "/address", "--leader_term=3s"};
  for (const std::string& flag : cluster.SharedStoreFlags()) argv.push_back(flag);
  return std::make_unique<Process>(argv, cluster.dir() + "/standby.log");
}

TEST(Standby, WhenTheLeaderIsKilledMidStageTheStandbyLeadsAndAgentAndCliFollowItByThemselves) {
  Cluster cluster;
  cluster.StartController({"--leader_term=3s"});
  ASSERT_FALSE(cluster.SharedStoreFlags().empty()) << "needs the scaleout fixture";
  const std::string standby_address = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  auto standby = StartStandby(cluster, standby_address);
  const std::string both = "--controller=" + cluster.address() + "," + standby_address;
  cluster.StartAgent({.name = UniqueName("failover"), .labels = {"linux"}, .flags = {both}});
  cluster.WaitForAgents(1);
  const std::string pipeline = cluster.WriteFile(
      "p.yml", "name: failover\nstages:\n  - name: count\n    image: dockyard/busybox\n    run: |\n"
               "      for i in $(seq 1 30); do echo line-$i; sleep 0.4; done\n"
               "      mkdir /out && echo survived > /out/result.txt\n"
               "    artifacts: [/out/result.txt]\n");
  auto cli = cluster.SpawnCli({both, "run", pipeline, "--artifacts-dir=" + cluster.dir() + "/target"});
  ASSERT_TRUE(Eventually([&] { return cli->Log().find("line-5") != std::string::npos; }, absl::Seconds(60)))
      << cli->Log();

  const absl::Time killed = absl::Now();
  cluster.controller().Signal(SIGKILL);
  ASSERT_TRUE(Eventually([&] { return fs::exists(cluster.dir() + "/standby/address"); }, absl::Seconds(10)))
      << standby->Log();
  std::cout << "standby leads " << absl::FormatDuration(absl::Now() - killed) << " after the leader's SIGKILL\n";

  ASSERT_EQ(cli->Wait(absl::Minutes(3)), 0) << cli->Log() << standby->Log();
  const std::string out = cli->Log();
  for (int i = 1; i <= 30; ++i) {  // every line exactly once, across the switch
    const std::string line = absl::StrCat("line-", i, "\n");
    const size_t first = out.find(line);
    ASSERT_NE(first, std::string::npos) << line << out;
    EXPECT_EQ(out.find(line, first + 1), std::string::npos) << "twice: " << line << out;
  }
  EXPECT_EQ(Shell("cat " + cluster.dir() + "/target/result.txt"), "survived\n");  // verified by the CLI
  standby->Signal(SIGTERM);
  EXPECT_EQ(standby->Wait(absl::Seconds(20)), 0) << standby->Log();
}

TEST(Standby, APausedLeaderIsReplacedAndStepsDownWhenItWakes) {
  Cluster cluster;
  cluster.StartController({"--leader_term=3s"});
  ASSERT_FALSE(cluster.SharedStoreFlags().empty()) << "needs the scaleout fixture";
  cluster.WriteFile("p.yml", "name: queued\nstages:\n  - name: s\n    image: dockyard/busybox\n    run: 'true'\n");
  const CliResult submitted = cluster.Cli({"run", "p.yml", "--detach"});  // no agent: it stays queued
  ASSERT_EQ(submitted.exit_code, 0) << submitted.out << submitted.err;
  const std::string run_id(absl::StripAsciiWhitespace(submitted.out));

  // The standby shares the leader's identity: its CA, secrets key and admin token.
  const std::string standby_dir = cluster.dir() + "/standby";
  fs::create_directories(standby_dir);
  for (const char* item : {"tls", "secrets.key", "admin.token"}) {
    fs::copy(cluster.dir() + "/controller/" + item, standby_dir + "/" + item, fs::copy_options::recursive);
  }
  std::vector<std::string> argv = {Bin("controller/dockyard-controller"), "--listen=127.0.0.1:0",
                                   "--data_dir=" + standby_dir, "--address_file=" + standby_dir + "/address",
                                   "--leader_term=3s"};
  for (const std::string& flag : cluster.SharedStoreFlags()) argv.push_back(flag);
  Process standby(argv, cluster.dir() + "/standby.log");

  // While the leader renews its lease the standby neither leads nor listens.
  absl::SleepFor(absl::Seconds(4));
  EXPECT_FALSE(fs::exists(standby_dir + "/address"));
  EXPECT_THAT(standby.Log(), HasSubstr("standing by"));

  const absl::Time paused = absl::Now();
  cluster.controller().Signal(SIGSTOP);
  ASSERT_TRUE(Eventually([&] { return fs::exists(standby_dir + "/address"); }, absl::Seconds(10)))
      << standby.Log();
  const absl::Duration takeover = absl::Now() - paused;
  EXPECT_LT(takeover, absl::Seconds(10));
  std::string address = Shell("cat " + standby_dir + "/address");
  while (!address.empty() && address.back() == '\n') address.pop_back();

  // The new leader serves the runs the old one took.
  const std::string cli = absl::StrCat(Bin("cli/dockyard"), " --controller=", address, " --ca_file=", cluster.ca_file(),
                                       " --token_file=", cluster.admin_token_file());
  EXPECT_THAT(Shell(cli + " status " + run_id + " 2>&1"), HasSubstr("queued"));

  // Woken, the old leader finds its lease gone and steps down (exit 3) instead of
  // serving agents or writing beside the new one.
  cluster.controller().Signal(SIGCONT);
  EXPECT_EQ(cluster.controller().Wait(absl::Seconds(10)), 3) << cluster.controller().Log();
  EXPECT_THAT(cluster.controller().Log(), HasSubstr("stepping down"));
  EXPECT_THAT(Shell(cli + " status " + run_id + " 2>&1"), HasSubstr("queued"));
  std::cout << "standby took over " << absl::FormatDuration(takeover) << " after the leader paused\n";
  standby.Signal(SIGTERM);
  EXPECT_EQ(standby.Wait(absl::Seconds(20)), 0) << standby.Log();
}

}  // namespace
}  // namespace dockyard::testing
