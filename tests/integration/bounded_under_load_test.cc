// Hostile volumes with real processes and the real engine: half a gigabyte of
// output, a 100 MB line and a pipeline of 100,000 stages each meet their bound
// while both daemons stay up, other runs go on, and the agent stays small (the
// README's bound: 64 MiB resident).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

// The README's promise for an agent whatever its stages print.
constexpr int64_t kAgentRssBoundKb = 64 * 1024;

int64_t PeakRssKb(pid_t pid) {
  const std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  const size_t at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::atoll(status.c_str() + at + 6);
}

TEST(BoundedUnderLoad, HalfAGigabyteOfOutputAndAHundredMegabyteLineKeepTheAgentSmallWhileOtherRunsGoOn) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = UniqueName("flood");
  cluster.StartAgent({.name = agent, .labels = {"linux"}, .slots = 3, .flags = {"--max_log_bytes=64M"}});
  cluster.WaitForAgents(1);
  auto flood = cluster.SpawnCli({"run", cluster.WriteFile("flood.yml", R"(name: flood
stages:
  - name: lines
    image: dockyard/busybox
    run: |
      # 1000-byte lines: the engine's cost is per line, the agent's per byte.
      line=$(head -c 999 /dev/zero | tr '\0' a)
      yes "$line" | head -c 500000000
  - name: one-line
    image: dockyard/busybox
    run: head -c 100000000 /dev/zero | tr '\0' x
)")});
  ASSERT_TRUE(Eventually([&] { return cluster.Cli({"status", "1"}).out.find("running") != std::string::npos; },
                         absl::Seconds(30)));
  // Meanwhile another run comes and goes.
  CliResult quiet = cluster.Cli({"run", cluster.WriteFile("quiet.yml", "name: quiet\nstages:\n  - name: s\n"
                                                                      "    image: dockyard/busybox\n    run: echo ok\n")},
                                absl::Minutes(2));
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_THAT(cluster.Cli({"status", "1"}).out, HasSubstr("running")) << "the flood should still be going";

  ASSERT_EQ(flood->Wait(absl::Minutes(5)), 0) << flood->Log().substr(0, 2000);
  const int64_t peak_kb = PeakRssKb(cluster.agent(agent).pid());
  RecordProperty("agent_peak_rss_kb", static_cast<int>(peak_kb));
  EXPECT_LT(peak_kb, kAgentRssBoundKb) << "the agent's peak RSS was " << peak_kb << " KiB";
  EXPECT_TRUE(cluster.agent(agent).Running());
  // Each log kept its head and tail within the agent's limit and says what was cut.
  for (const char* stage : {"lines", "one-line"}) {
    const std::string log = cluster.Cli({"logs", "1", stage}).out;
    EXPECT_LT(log.size(), (64u << 20) + 4096) << stage;
    EXPECT_NE(log.find("[dockyard] log cut: "), std::string::npos) << stage;
  }
}

TEST(BoundedUnderLoad, PipelineOfAHundredThousandStagesIsRefusedByTheCliAndByTheController) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = UniqueName("many");
  cluster.StartAgent({.name = agent, .labels = {"linux"}});
  cluster.WaitForAgents(1);
  std::string yaml = "name: huge\nstages:\n";
  for (int i = 0; i < 100000; ++i) {
    absl::StrAppend(&yaml, "  - {name: s", i, ", image: dockyard/busybox, run: 'true'}\n");
  }
  const std::string file = cluster.WriteFile("huge.yml", yaml);

  CliResult big = cluster.Cli({"run", file});
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_THAT(big.err, HasSubstr("--max_pipeline_bytes"));
  CliResult many = cluster.Cli({"run", "--max_pipeline_bytes=64M", file});
  EXPECT_EQ(many.exit_code, 2);
  EXPECT_THAT(many.err, HasSubstr("100000 stages; a pipeline may have at most 1000 (--max_stages)"));
  // A client that lets it through still meets the controller's own limit.
  CliResult sent = cluster.Cli({"run", "--max_pipeline_bytes=64M", "--max_stages=200000", file});
  EXPECT_NE(sent.exit_code, 0);
  EXPECT_THAT(sent.err, HasSubstr("the pipeline has 100000 stages; this controller accepts at most 1000 (--max_stages)"));

  EXPECT_TRUE(cluster.controller().Running());
  CliResult fine = cluster.Cli({"run", cluster.WriteFile("fine.yml", "name: fine\nstages:\n  - name: s\n"
                                                                     "    image: dockyard/busybox\n    run: echo ok\n")});
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
}

}  // namespace
}  // namespace dockyard::testing
