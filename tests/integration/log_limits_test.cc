// Logs stay bounded whatever a stage prints, with real processes and the real
// engine: past the agent's --max_log_bytes the log keeps its head and its tail and
// says what was cut between them; a line without end streams through the CLI in
// pieces instead of being held whole.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {


TEST(LogLimits, LogPastTheLimitKeepsHeadAndTailAndSaysWhatWasCut) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = UniqueName("logcap");
  cluster.StartAgent({.name = agent, .labels = {"linux"}, .flags = {"--max_log_bytes=1M"}});
  cluster.WaitForAgents(1);
  // 6.9 MB of numbered lines against a 1 MiB limit.
  CliResult r = cluster.Cli({"run", cluster.WriteFile("loud.yml", "name: loud\nstages:\n  - name: s\n"
                                                                  "    image: dockyard/busybox\n"
                                                                  "    run: seq 1 1000000\n")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string log = cluster.Cli({"logs", "1", "s"}).out;
  EXPECT_LT(log.size(), (1u << 20) + 4096);
  EXPECT_GT(log.size(), (1u << 20) - 65536);
  const size_t first = log.find("\n1\n2\n3\n");
  EXPECT_NE(first, std::string::npos);
  // (Checked with find: a failure must not print megabytes.)
  EXPECT_EQ(log.substr(log.size() - 15), "999999\n1000000\n");
  EXPECT_NE(log.find("\n[dockyard] log cut: "), std::string::npos);
  EXPECT_NE(log.find("bytes left out here (the agent's --max_log_bytes is 1048576"), std::string::npos);
  // The same story reached the CLI that followed the run.
  EXPECT_NE(r.out.find("\ns | [dockyard] log cut: "), std::string::npos);
  EXPECT_NE(r.out.find("\ns | 1000000\n"), std::string::npos);
}

TEST(LogLimits, EndlessLineStreamsThroughTheCliWithoutBeingHeldWhole) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = UniqueName("longline");
  cluster.StartAgent({.name = agent, .labels = {"linux"}});
  cluster.WaitForAgents(1);
  // One 100 MB line: stored whole (in pieces), never held whole by the CLI.
  auto run = cluster.SpawnCli({"run", cluster.WriteFile("line.yml", "name: line\nstages:\n  - name: s\n"
                                                                    "    image: dockyard/busybox\n"
                                                                    "    run: head -c 100000000 /dev/zero | tr '\\0' x\n")});
  ASSERT_EQ(run->Wait(absl::Minutes(5)), 0) << run->Log().substr(0, 2000);
  EXPECT_LT(run->max_rss_kb(), 50 * 1024) << "the CLI held " << run->max_rss_kb() << " KiB";
  const std::string out = run->Log();
  // The line arrives whole, in pieces: "s | xxxx...", each piece one console line.
  size_t xs = 0;
  for (size_t at = out.find("\ns | x"); at != std::string::npos; at = out.find("\ns | x", at + 1)) {
    const size_t from = at + 5;
    const size_t to = out.find_first_not_of('x', from);
    xs += (to == std::string::npos ? out.size() : to) - from;
  }
  EXPECT_EQ(xs, 100000000u);
  EXPECT_EQ(out.rfind("run 1 submitted", 0), 0u);
}

}  // namespace
}  // namespace dockyard::testing
