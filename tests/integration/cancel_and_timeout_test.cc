// Cancelling a run (CLI command or Ctrl-C) and a stage's `timeout:` stop its
// container within seconds, and the run's status says why.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

class CancelAndTimeout : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    agent_ = absl::StrCat("ct-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ::getpid());
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 1});
    cluster_.WaitForAgents(1);
    cluster_.WriteFile("sleepy.yml", R"(name: sleepy
stages:
  - name: nap
    image: dockyard/busybox
    run: |
      echo "napping"
      sleep 1000
)");
  }
  bool ContainerGoneWithin(absl::Duration limit) {
    return Eventually([&] { return Shell("docker ps -aq --filter label=dockyard.agent=" + agent_).empty(); }, limit);
  }
  bool ContainerRunning() { return !Shell("docker ps -q --filter label=dockyard.agent=" + agent_).empty(); }

  Cluster cluster_;
  std::string agent_;
};

TEST_F(CancelAndTimeout, CancelRemovesTheContainerWithinFiveSeconds) {
  auto run = cluster_.SpawnCli({"run", cluster_.dir() + "/sleepy.yml"});
  ASSERT_TRUE(Eventually([&] { return ContainerRunning(); }, absl::Seconds(30))) << run->Log();
  ASSERT_EQ(cluster_.Cli({"cancel", "1"}).exit_code, 0);
  EXPECT_TRUE(ContainerGoneWithin(absl::Seconds(5)));
  EXPECT_EQ(run->Wait(absl::Seconds(20)), 5) << run->Log();  // 5: the run was cancelled
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, ContainsRegex("nap +cancelled"));
}

TEST_F(CancelAndTimeout, CtrlCOnRunCancelsTheRun) {
  auto run = cluster_.SpawnCli({"run", cluster_.dir() + "/sleepy.yml"});
  ASSERT_TRUE(Eventually([&] { return ContainerRunning(); }, absl::Seconds(30))) << run->Log();
  run->Signal(SIGINT);
  EXPECT_TRUE(ContainerGoneWithin(absl::Seconds(5)));
  EXPECT_EQ(run->Wait(absl::Seconds(20)), 5) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("cancelling run 1"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, HasSubstr("cancelled"));
}

// What a Jenkins abort sends to the step's processes.
TEST_F(CancelAndTimeout, SigtermOnRunCancelsTheRunLikeCtrlC) {
  auto run = cluster_.SpawnCli({"run", cluster_.dir() + "/sleepy.yml"});
  ASSERT_TRUE(Eventually([&] { return ContainerRunning(); }, absl::Seconds(30))) << run->Log();
  run->Signal(SIGTERM);
  EXPECT_TRUE(ContainerGoneWithin(absl::Seconds(5)));
  EXPECT_EQ(run->Wait(absl::Seconds(20)), 5) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("cancelling run 1"));
}

TEST_F(CancelAndTimeout, StagePastItsTimeoutIsKilledAndMarkedTimedOut) {
  cluster_.WriteFile("slow.yml", R"(name: slow
stages:
  - name: hang
    image: dockyard/busybox
    timeout: 2s
    run: |
      echo "hanging"
      sleep 1000
)");
  const absl::Time start = absl::Now();
  CliResult r = cluster_.Cli({"run", "slow.yml"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // 2 s of timeout, then the kill and clean-up within 5 s (plus start-up).
  EXPECT_LT(absl::Now() - start, absl::Seconds(12));
  EXPECT_TRUE(ContainerGoneWithin(absl::Seconds(1)));
  EXPECT_THAT(r.out, HasSubstr("timed out after 2s"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, ContainsRegex("hang +timed out"));
}

}  // namespace
}  // namespace dockyard::testing
