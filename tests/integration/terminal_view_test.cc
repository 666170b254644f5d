// `dockyard run` in a real terminal (a tmux pane): a live status line names each
// running stage with its ticking duration, and is gone once the run ends, leaving
// the log and the summary table. (Piped output carries no escape sequences at all:
// cli_for_ci_test.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(TerminalView, LiveStatusLineWhileStagesRunThenTheSummary) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = UniqueName("tty");
  cluster.StartAgent({.name = agent, .labels = {"linux"}, .slots = 2});
  cluster.WaitForAgents(1);
  const std::string file = cluster.WriteFile("tty.yml", "name: tty\nstages:\n  - name: slow\n"
                                                        "    image: dockyard/busybox\n"
                                                        "    run: echo started; sleep 4; echo done\n");
  const std::string session = UniqueName("dockyard-tty");
  const std::string cli = absl::StrCat(Bin("cli/dockyard"), " --controller=", cluster.address(), " --ca_file=",
                                       cluster.ca_file(), " --token_file=", cluster.admin_token_file());
  // The pane stays open after the CLI ends, so its last screen can be read.
  Shell(absl::StrCat("tmux new-session -d -s ", session, " -x 150 -y 40 'cd ", cluster.dir(), " && ", cli, " run ",
                     file, "; echo cli-exit=$?; sleep 60'"));
  auto pane = [&] { return Shell(absl::StrCat("tmux capture-pane -p -t ", session)); };

  std::string seen;
  EXPECT_TRUE(Eventually(
      [&] {
        seen = pane();
        return seen.find("running: slow 2s on " + agent) != std::string::npos ||
               seen.find("running: slow 3s on " + agent) != std::string::npos;
      },
      absl::Seconds(30)))
      << seen;
  EXPECT_THAT(seen, HasSubstr("slow | started"));
  EXPECT_TRUE(Eventually([&] { return (seen = pane()).find("cli-exit=0") != std::string::npos; }, absl::Seconds(30)))
      << seen;
  Shell("tmux kill-session -t " + session);
  EXPECT_THAT(seen, HasSubstr("slow | done"));
  EXPECT_THAT(seen, ContainsRegex("STAGE +AGENT +ATTEMPTS +DURATION +RESULT +ARTIFACTS"));
  EXPECT_THAT(seen, ContainsRegex("slow +" + agent + " +1 +[0-9.]+s +succeeded"));
  EXPECT_THAT(seen, Not(HasSubstr("running: slow")));  // cleared when the run ended
}

}  // namespace
}  // namespace dockyard::testing
