// Fencing with real processes: an agent cut off from its controller (here the
// controller is SIGSTOPped, the agent alive) for nearly its lease stops its running
// stage itself, so the container is gone before the controller can re-queue the
// stage elsewhere: a partition never leaves two live copies of one stage. While
// the controller does not answer, the stage's output waits on the agent's disk.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

TEST(Fencing, AgentCutOffPastItsLeaseKillsItsContainerBeforeTheStageIsRequeued) {
  Cluster cluster;
  cluster.StartController({"--lease_timeout=4s", "--heartbeat_interval=500ms"});
  const std::string agent = UniqueName("fenced");
  cluster.StartAgent({.name = agent, .labels = {"linux"}});
  cluster.WaitForAgents(1);
  auto run = cluster.SpawnCli({"run", cluster.WriteFile("long.yml", "name: long\nstages:\n  - name: s\n"
                                                                    "    image: dockyard/busybox\n    run: sleep 60\n")});
  const std::string mine = "docker ps -q --filter label=dockyard.agent=" + agent;
  ASSERT_TRUE(Eventually([&] { return !Shell(mine).empty(); }, absl::Seconds(30))) << run->Log();

  cluster.controller().Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  // Gone within the lease, while the controller cannot have re-queued anything.
  EXPECT_TRUE(Eventually([&] { return Shell(mine).empty(); }, absl::Seconds(4)));
  EXPECT_LT(absl::Now() - stopped, absl::Seconds(4));
  EXPECT_THAT(cluster.agent(agent).Log(), HasSubstr("cut off from the controller"));
  cluster.controller().Signal(SIGCONT);

  // Back together, the stage runs again as a new attempt; then we stop the run.
  cluster.WaitForStatus("1", "attempt 2", absl::Seconds(30));
  EXPECT_EQ(cluster.Cli({"cancel", "1"}).exit_code, 0);
  EXPECT_EQ(run->Wait(absl::Seconds(30)), 5) << run->Log();
  EXPECT_THAT(cluster.Cli({"logs", "1", "s", "--attempt=1"}).out, HasSubstr("cut off from the controller"));
}

// Peak resident memory of a live process, from /proc (KiB).
int64_t PeakRssKb(pid_t pid) {
  const std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  const size_t at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::atoll(status.c_str() + at + 6);
}

int64_t SpoolBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) total += static_cast<int64_t>(entry.file_size(ec));
  }
  return total;
}

TEST(Fencing, AStalledControllerLeavesTheLogOnTheAgentsSpoolNotInItsMemory) {
  Cluster cluster;
  // A lease long enough that the agent keeps its stage running through the stall
  // (which may take a minute on a loaded 2-core machine).
  cluster.StartController({"--lease_timeout=90s", "--heartbeat_interval=500ms"});
  const std::string agent = UniqueName("stalled");
  cluster.StartAgent({.name = agent, .labels = {"linux"}});
  cluster.WaitForAgents(1);
  // 120 MB of lines once the controller is stopped.
  auto run = cluster.SpawnCli({"run", cluster.WriteFile("loud.yml", R"(name: loud
stages:
  - name: s
    image: dockyard/busybox
    run: |
      echo ready
      sleep 2
      yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012345678 | head -c 120000000
      echo end
)")});
  ASSERT_TRUE(Eventually([&] { return cluster.Cli({"logs", "1", "s"}).out.find("ready") != std::string::npos; },
                         absl::Seconds(30)));
  cluster.controller().Signal(SIGSTOP);
  const std::string spool = cluster.dir() + "/agent-" + agent + "/spool";
  const bool spooled = Eventually([&] { return SpoolBytes(spool) > 120000000; }, absl::Seconds(60));
  const int64_t peak_kb = PeakRssKb(cluster.agent(agent).pid());
  RecordProperty("agent_peak_rss_kb", static_cast<int>(peak_kb));
  cluster.controller().Signal(SIGCONT);
  ASSERT_TRUE(spooled) << "the spool holds " << SpoolBytes(spool) << " bytes";
  // The output waited on disk: the agent's memory held at most a window of it.
  EXPECT_LT(peak_kb, 64 * 1024) << "the agent's peak RSS was " << peak_kb << " KiB";

  // Back together, all of it arrives, in order, once.
  ASSERT_EQ(run->Wait(absl::Seconds(120)), 0);
  const std::string tail = Shell(absl::StrCat("cd ", cluster.dir(), " && ", Bin("cli/dockyard"), " --controller=",
                                              cluster.address(), " --ca_file=", cluster.ca_file(), " --token_file=",
                                              cluster.admin_token_file(), " logs 1 s | grep -c abcdefghij"));
  // 82-byte lines, the last one cut short by head (52 bytes, still holding the pattern).
  EXPECT_EQ(tail, absl::StrCat(120000000 / 82 + 1, "\n"));
}

}  // namespace
}  // namespace dockyard::testing
