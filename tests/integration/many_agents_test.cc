// Several agents, each its own process on this machine, with labels and slots:
// stages go where their labels allow, never above an agent's slots; a stage no
// agent can take says why; a drained agent takes nothing new.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

struct Window {
  double start = -1;
  double end = -1;
};

Window WindowFromLog(const std::string& log) {
  Window w;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::ConsumePrefix(&line, "start ")) (void)absl::SimpleAtod(line, &w.start);
    if (absl::ConsumePrefix(&line, "end ")) (void)absl::SimpleAtod(line, &w.end);
  }
  return w;
}

std::string Name(const std::string& role) { return absl::StrCat(role, "-", ::getpid()); }

TEST(ManyAgents, StagesFollowLabelsAndNeverExceedAnAgentsSlots) {
  Cluster cluster;
  cluster.StartController();
  const std::string plain = Name("plain"), python = Name("python"), gpu = Name("gpu");
  cluster.StartAgent({.name = plain, .labels = {"linux"}, .slots = 2});
  cluster.StartAgent({.name = python, .labels = {"linux", "python"}, .slots = 2});
  cluster.StartAgent({.name = gpu, .labels = {"linux", "gpu"}, .slots = 1});
  cluster.WaitForAgents(3);

  // 30 stages: 10 need python, 5 need a gpu, 15 take any linux agent. Each prints
  // when it started and ended on the host's uptime clock.
  std::string yaml = "name: spread\nstages:\n";
  std::map<std::string, std::string> needs;  // stage -> label it requires
  for (int i = 0; i < 30; ++i) {
    const std::string label = i < 10 ? "python" : i < 15 ? "gpu" : "linux";
    const std::string stage = absl::StrCat("s", i);
    needs[stage] = label;
    absl::StrAppend(&yaml, "  - name: ", stage, "\n    image: dockyard/busybox\n    agent: {labels: [", label,
                    "]}\n    run: |\n      echo \"start $(cut -d' ' -f1 /proc/uptime)\"\n      sleep 1\n",
                    "      echo \"end $(cut -d' ' -f1 /proc/uptime)\"\n");
  }
  cluster.WriteFile("p.yml", yaml);
  CliResult r = cluster.Cli({"run", "p.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  const std::string status = cluster.Cli({"status", "1"}).out;
  std::map<std::string, std::vector<Window>> by_agent;
  for (const auto& [stage, label] : needs) {
    const std::string agent = AgentOfStage(status, stage);
    if (label == "python") {
      EXPECT_EQ(agent, python) << stage;
    } else if (label == "gpu") {
      EXPECT_EQ(agent, gpu) << stage;
    }
    Window w = WindowFromLog(cluster.Cli({"logs", "1", stage}).out);
    ASSERT_GE(w.start, 0) << stage;
    ASSERT_GE(w.end, w.start) << stage;
    by_agent[agent].push_back(w);
  }
  const std::map<std::string, int> slots = {{plain, 2}, {python, 2}, {gpu, 1}};
  for (const auto& [agent, windows] : by_agent) {
    ASSERT_TRUE(slots.count(agent)) << "unknown agent " << agent;
    int most = 0;
    for (const Window& at : windows) {
      int busy = 0;
      for (const Window& w : windows) busy += w.start <= at.start && at.start < w.end;
      most = std::max(most, busy);
    }
    EXPECT_LE(most, slots.at(agent)) << agent;
    EXPECT_GE(most, 1) << agent;
  }
  EXPECT_EQ(by_agent.size(), 3u) << "every agent should have taken stages";
}

TEST(ManyAgents, StageNoAgentCanTakeSaysWhyItWaits) {
  Cluster cluster;
  cluster.StartController();
  cluster.StartAgent({.name = Name("cpu-only"), .labels = {"linux"}, .slots = 1});
  cluster.WaitForAgents(1);
  cluster.WriteFile("p.yml", R"(name: needs-gpu
stages:
  - name: train
    image: dockyard/busybox
    agent: {labels: [gpu]}
    run: echo training
)");
  auto run = cluster.SpawnCli({"run", cluster.dir() + "/p.yml"});
  const std::string status = cluster.WaitForStatus("1", "waiting: no connected agent has label gpu");
  EXPECT_THAT(status, HasSubstr("waiting: no connected agent has label gpu"));
  EXPECT_EQ(cluster.Cli({"cancel", "1"}).exit_code, 0);
  EXPECT_EQ(run->Wait(absl::Seconds(20)), 5) << run->Log();  // 5: cancelled
}

TEST(ManyAgents, DrainedAgentTakesNoNewStages) {
  Cluster cluster;
  cluster.StartController();
  const std::string drained = Name("drained"), busy = Name("busy");
  cluster.StartAgent({.name = drained, .labels = {"linux"}, .slots = 2});
  cluster.StartAgent({.name = busy, .labels = {"linux"}, .slots = 2});
  cluster.WaitForAgents(2);
  CliResult drain = cluster.Cli({"agents", "drain", drained});
  ASSERT_EQ(drain.exit_code, 0) << drain.err;
  EXPECT_THAT(cluster.Cli({"agents"}).out, ::testing::ContainsRegex(drained + " +draining"));
  cluster.WriteFile("p.yml", R"(name: four
stages:
  - {name: a, image: dockyard/busybox, run: "sleep 1"}
  - {name: b, image: dockyard/busybox, run: "sleep 1"}
  - {name: c, image: dockyard/busybox, run: "sleep 1"}
  - {name: d, image: dockyard/busybox, run: "sleep 1"}
)");
  ASSERT_EQ(cluster.Cli({"run", "p.yml"}).exit_code, 0);
  const std::string status = cluster.Cli({"status", "1"}).out;
  for (const char* stage : {"a", "b", "c", "d"}) EXPECT_EQ(AgentOfStage(status, stage), busy) << status;
}

TEST(ManyAgents, SigtermLetsTheRunningStageFinishAndTakesNothingNew) {
  Cluster cluster;
  cluster.StartController();
  const std::string leaving = Name("leaving");
  Process& agent = cluster.StartAgent({.name = leaving, .labels = {"linux"}, .slots = 1, .flags = {"--drain_grace=60s"}});
  cluster.WaitForAgents(1);
  cluster.WriteFile("p.yml", R"(name: graceful
stages:
  - name: first
    image: dockyard/busybox
    run: |
      sleep 2
      echo "first finished"
  - name: second
    image: dockyard/busybox
    run: echo "second ran"
    needs: [first]
)");
  auto run = cluster.SpawnCli({"run", cluster.dir() + "/p.yml"});
  cluster.WaitForStatus("1", "running");
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(absl::Seconds(30)), 0) << agent.Log();
  const std::string status = cluster.Cli({"status", "1"}).out;
  EXPECT_THAT(status, ::testing::ContainsRegex("first +succeeded")) << status;
  EXPECT_THAT(status, ::testing::ContainsRegex("second +queued")) << status;
  EXPECT_EQ(cluster.Cli({"cancel", "1"}).exit_code, 0);
  run->Wait(absl::Seconds(20));
}

}  // namespace
}  // namespace dockyard::testing
