// The controller SIGKILLed while stages run, then restarted on the same port and
// data dir: the agent and `dockyard run` reconnect by themselves, the run
// completes, every log is complete (none missing, none twice), and the CLI exits
// with the run's real status.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

void ExpectCompleteCount(const std::string& log, const std::string& tag, int lines) {
  int next = 1;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    int n;
    if (!absl::ConsumePrefix(&line, tag + " ") || !absl::SimpleAtoi(line, &n)) continue;
    ASSERT_EQ(n, next) << tag << " line " << n << " out of place (expected " << next << ")\n" << log;
    ++next;
  }
  EXPECT_EQ(next, lines + 1) << log;
}

TEST(ControllerCrash, RunCompletesWithCompleteLogsAfterAControllerSigkill) {
  Cluster cluster;
  cluster.StartController({"--lease_timeout=30s", "--heartbeat_interval=300ms"});
  const std::string agent = absl::StrCat("survivor-", ::getpid());
  cluster.StartAgent({.name = agent, .labels = {"linux"}, .slots = 2});
  cluster.WaitForAgents(1);
  cluster.WriteFile("p.yml", R"(name: crash
stages:
  - name: left
    image: dockyard/busybox
    run: for i in $(seq 1 60); do echo "left $i"; sleep 0.1; done
  - name: right
    image: dockyard/busybox
    run: for i in $(seq 1 60); do echo "right $i" >&2; sleep 0.1; done
  - name: last
    image: dockyard/busybox
    needs: [left, right]
    run: |
      for i in $(seq 1 10); do echo "last $i"; done
      exit 3
)");
  auto run = cluster.SpawnCli({"run", cluster.dir() + "/p.yml"});
  ASSERT_TRUE(Eventually([&] { return cluster.Cli({"logs", "1", "left"}).out.find("left 10\n") != std::string::npos; },
                         absl::Seconds(30)));
  cluster.controller().Signal(SIGKILL);
  cluster.controller().Wait();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  cluster.StartController({"--lease_timeout=30s", "--heartbeat_interval=300ms"});

  EXPECT_EQ(run->Wait(absl::Seconds(90)), 1) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("stage last failed: exit code 3"));
  ExpectCompleteCount(cluster.Cli({"logs", "1", "left"}).out, "left", 60);
  ExpectCompleteCount(cluster.Cli({"logs", "1", "right"}).out, "right", 60);
  ExpectCompleteCount(cluster.Cli({"logs", "1", "last"}).out, "last", 10);
  // What the CLI showed live is complete too: it resumed its followers at their offsets.
  ExpectCompleteCount(run->Log(), "left  | left", 60);
  const std::string status = cluster.Cli({"status", "1"}).out;
  EXPECT_THAT(status, ::testing::ContainsRegex("left +succeeded +attempt 1 on"));
  EXPECT_THAT(status, ::testing::ContainsRegex("right +succeeded +attempt 1 on"));
  // A new run after the restart gets a fresh id.
  cluster.WriteFile("q.yml", "name: after\nstages:\n  - {name: x, image: dockyard/busybox, run: echo after}\n");
  CliResult next = cluster.Cli({"run", "q.yml"});
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  EXPECT_THAT(next.out, HasSubstr("run 2 submitted"));
}

}  // namespace
}  // namespace dockyard::testing
