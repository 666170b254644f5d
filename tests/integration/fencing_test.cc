// Fencing with real processes: an agent cut off from its controller (here the
// controller is SIGSTOPped, the agent alive) for nearly its lease stops its running
// stage itself, so the container is gone before the controller can re-queue the
// stage elsewhere: a partition never leaves two live copies of one stage.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dockyard::testing
