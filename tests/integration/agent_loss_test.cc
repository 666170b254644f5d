// Agents die, restart and freeze mid-stage (SIGKILL, SIGSTOP; never a polite
// call): no stage is silently lost, no log line is dropped or duplicated, no stage
// runs twice to completion, and no container is left behind.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A stage printing "line 1" .. "line N" every `pause` seconds, then "done".
std::string CountingPipeline(int lines, const std::string& pause) {
  return absl::StrCat(R"(name: counting
stages:
  - name: count
    image: dockyard/busybox
    run: |
      for i in $(seq 1 )", lines, R"(); do echo "line $i"; sleep )", pause, R"(; done
      echo done
)");
}

// Checks "line 1" .. "line N" each appear exactly once and in order.
void ExpectCompleteCount(const std::string& log, int lines) {
  int next = 1;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    int n;
    if (!absl::ConsumePrefix(&line, "line ") || !absl::SimpleAtoi(line, &n)) continue;
    ASSERT_EQ(n, next) << "line " << n << " out of place (expected " << next << ")\n" << log;
    ++next;
  }
  EXPECT_EQ(next, lines + 1) << log;
}

class AgentLoss : public ::testing::Test {
 protected:
  void StartCluster(const std::string& lease) {
    cluster_.StartController({"--lease_timeout=" + lease, "--heartbeat_interval=300ms"});
  }
  std::string Name(const std::string& role) {
    return absl::StrCat(role, "-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ::getpid());
  }
  std::string Containers(const std::string& agent, bool running_only = false) {
    return Shell(absl::StrCat("docker ps ", running_only ? "" : "-a", " -q --filter label=dockyard.agent=", agent));
  }
  Cluster cluster_;
};

TEST_F(AgentLoss, StageOfAKilledAgentRerunsElsewhereAndTheLostAttemptIsKept) {
  StartCluster("3s");
  const std::string a = Name("a"), b = Name("b");
  cluster_.StartAgent({.name = a, .labels = {"linux"}, .slots = 1});
  cluster_.StartAgent({.name = b, .labels = {"linux"}, .slots = 1});
  cluster_.WaitForAgents(2);
  cluster_.WriteFile("p.yml", CountingPipeline(20, "0.2"));
  auto run = cluster_.SpawnCli({"run", cluster_.dir() + "/p.yml"});

  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"logs", "1", "count"}).out.find("line 3") != std::string::npos; },
                         absl::Seconds(30)));
  const std::string victim = AgentOfStage(cluster_.Cli({"status", "1"}).out, "count");
  const std::string survivor = victim == a ? b : a;
  cluster_.agent(victim).Signal(SIGKILL);
  cluster_.agent(victim).Wait();

  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  const std::string status = cluster_.Cli({"status", "1"}).out;
  EXPECT_THAT(status, ::testing::ContainsRegex("count +succeeded +attempt 2 on " + survivor)) << status;
  const std::string lost = cluster_.Cli({"logs", "1", "count", "--attempt=1"}).out;
  EXPECT_THAT(lost, HasSubstr("line 3"));
  EXPECT_THAT(lost, HasSubstr("[dockyard] attempt 1 lost"));
  ExpectCompleteCount(cluster_.Cli({"logs", "1", "count", "--attempt=2"}).out, 20);

  // The killed agent comes back: the container it left is not its stage any more.
  EXPECT_FALSE(Containers(victim).empty()) << "SIGKILL should have left the container behind";
  cluster_.StartAgent({.name = victim, .labels = {"linux"}, .slots = 1});
  EXPECT_TRUE(Eventually([&] { return Containers(victim).empty(); }, absl::Seconds(15)))
      << cluster_.agent(victim).Log();
}

TEST_F(AgentLoss, AgentRestartedWithinTheLeaseReadoptsItsContainer) {
  StartCluster("15s");
  const std::string agent = Name("phoenix");
  cluster_.StartAgent({.name = agent, .labels = {"linux"}, .slots = 1});
  cluster_.WaitForAgents(1);
  cluster_.WriteFile("p.yml", CountingPipeline(40, "0.1"));
  auto run = cluster_.SpawnCli({"run", cluster_.dir() + "/p.yml"});

  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"logs", "1", "count"}).out.find("line 5") != std::string::npos; },
                         absl::Seconds(30)));
  cluster_.agent(agent).Signal(SIGKILL);
  cluster_.agent(agent).Wait();
  cluster_.StartAgent({.name = agent, .labels = {"linux"}, .slots = 1});

  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  const std::string status = cluster_.Cli({"status", "1"}).out;
  EXPECT_THAT(status, ::testing::ContainsRegex("count +succeeded +attempt 1 on ")) << status;
  const std::string log = cluster_.Cli({"logs", "1", "count"}).out;
  EXPECT_THAT(log, HasSubstr("took this container over again"));
  ExpectCompleteCount(log, 40);
  EXPECT_THAT(log, HasSubstr("done"));
  EXPECT_TRUE(Eventually([&] { return Containers(agent).empty(); }, absl::Seconds(5)));
}

TEST_F(AgentLoss, PausedHolderPastTheLeaseIsRefusedAndItsContainerRemoved) {
  StartCluster("3s");
  const std::string a = Name("a"), b = Name("b");
  cluster_.StartAgent({.name = a, .labels = {"linux"}, .slots = 1});
  cluster_.StartAgent({.name = b, .labels = {"linux"}, .slots = 1});
  cluster_.WaitForAgents(2);
  cluster_.WriteFile("p.yml", CountingPipeline(60, "0.25"));
  auto run = cluster_.SpawnCli({"run", cluster_.dir() + "/p.yml"});

  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"logs", "1", "count"}).out.find("line 2") != std::string::npos; },
                         absl::Seconds(30)));
  const std::string stale = AgentOfStage(cluster_.Cli({"status", "1"}).out, "count");
  const std::string fresh = stale == a ? b : a;
  cluster_.agent(stale).Signal(SIGSTOP);
  // Past the lease the stage moves on to the other agent as attempt 2.
  cluster_.WaitForStatus("1", "attempt 2 on " + fresh);
  cluster_.agent(stale).Signal(SIGCONT);
  // Woken up, the stale holder is told its attempt is gone and removes the container
  // long before its script (15 s) could have finished.
  EXPECT_TRUE(Eventually([&] { return Containers(stale).empty(); }, absl::Seconds(8))) << cluster_.agent(stale).Log();

  EXPECT_EQ(run->Wait(absl::Seconds(90)), 0) << run->Log();
  const std::string first = cluster_.Cli({"logs", "1", "count", "--attempt=1"}).out;
  const std::string second = cluster_.Cli({"logs", "1", "count", "--attempt=2"}).out;
  EXPECT_THAT(first, Not(HasSubstr("\ndone\n"))) << "the stale attempt must not have completed";
  ExpectCompleteCount(second, 60);
  EXPECT_THAT(second, HasSubstr("\ndone\n"));
  EXPECT_THAT(cluster_.agent(stale).Log(), HasSubstr("no longer assigned to this agent"));
}

}  // namespace
}  // namespace dockyard::testing
