// The walking skeleton end to end: real controller and agent processes, the real
// CLI, the real Docker engine (dockyard/busybox).
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// When a stage's script started and ended, from marks it printed in its log.
struct Window {
  int64_t start = 0;
  int64_t end = 0;
};

// Stages print time marks; busybox date has no sub-second format, so they use
// /proc/uptime (one clock for all containers on a host, in hundredths).
std::string WithMarks(const std::string& yaml) {
  return absl::StrReplaceAll(yaml, {{"MARK", "$(cut -d' ' -f1 /proc/uptime)"}});
}

Window WindowFromLog(const std::string& log) {
  Window w;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    double v;
    if (absl::ConsumePrefix(&line, "start ") && absl::SimpleAtod(line, &v)) w.start = static_cast<int64_t>(v * 1000);
    if (absl::ConsumePrefix(&line, "end ") && absl::SimpleAtod(line, &v)) w.end = static_cast<int64_t>(v * 1000);
  }
  return w;
}

std::string LastRunId(const std::string& cli_out) {
  size_t pos = cli_out.find("run ");
  if (pos == std::string::npos) return "";
  size_t end = cli_out.find(' ', pos + 4);
  return cli_out.substr(pos + 4, end - pos - 4);
}

class PipelineRun : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    // No drain grace: SIGTERM stops running stages at once.
    cluster_.StartAgent({.name = AgentName(), .labels = {"linux"}, .slots = 2, .flags = {"--drain_grace=0s"}});
    cluster_.WaitForAgents(1);
  }
  std::string AgentName() const {
    return absl::StrCat("it-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ::getpid());
  }
  Cluster cluster_;
};

TEST_F(PipelineRun, StagesRunInNeedsOrder) {
  cluster_.WriteFile("p.yml", WithMarks(R"(name: ordered
stages:
  - name: second
    image: dockyard/busybox
    needs: [first]
    run: |
      echo "start MARK"
      echo "end MARK"
  - name: first
    image: dockyard/busybox
    run: |
      echo "start MARK"
      sleep 1
      echo "end MARK"
)"));
  CliResult r = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = LastRunId(r.out);
  Window first = WindowFromLog(cluster_.Cli({"logs", id, "first"}).out);
  Window second = WindowFromLog(cluster_.Cli({"logs", id, "second"}).out);
  ASSERT_GT(first.end, 0) << r.out;
  EXPECT_GE(second.start, first.end) << r.out;
  EXPECT_LT(r.out.find("first  | ==> succeeded"), r.out.find("second | ==> assigned")) << r.out;
}

TEST_F(PipelineRun, HundredThousandLinesPerStreamArriveCompleteAndInOrder) {
  cluster_.WriteFile("p.yml", R"(name: chatty
stages:
  - name: chatty
    image: dockyard/busybox
    run: |
      seq 1 100000 | sed 's/^/out /' &
      seq 1 100000 | sed 's/^/err /' >&2
      wait
)");
  CliResult r = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string log = cluster_.Cli({"logs", LastRunId(r.out), "chatty"}).out;
  int64_t next_out = 1, next_err = 1;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    int64_t n;
    if (absl::ConsumePrefix(&line, "out ")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &n)) << line;
      ASSERT_EQ(n, next_out) << "stdout out of order";
      ++next_out;
    } else if (absl::ConsumePrefix(&line, "err ")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &n)) << line;
      ASSERT_EQ(n, next_err) << "stderr out of order";
      ++next_err;
    }
  }
  EXPECT_EQ(next_out, 100001);
  EXPECT_EQ(next_err, 100001);
  // The live view got them too, with the stage prefix.
  EXPECT_THAT(r.out, HasSubstr("chatty | out 100000\n"));
  EXPECT_THAT(r.out, HasSubstr("chatty | err 100000\n"));
}

TEST_F(PipelineRun, FailingStageFailsTheRunAndSkipsItsDependents) {
  cluster_.WriteFile("p.yml", R"(name: broken
stages:
  - name: unit
    image: dockyard/busybox
    run: |
      echo "about to fail"
      exit 3
  - name: package
    image: dockyard/busybox
    needs: [unit]
    run: echo never
  - name: publish
    image: dockyard/busybox
    needs: [package]
    run: echo never
)");
  CliResult r = cluster_.Cli({"run", "p.yml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("unit    | about to fail"));
  EXPECT_THAT(r.out, HasSubstr("failed after"));
  EXPECT_THAT(r.out, HasSubstr("stage unit failed: exit code 3"));
  EXPECT_THAT(r.out, Not(HasSubstr("never")));
  CliResult status = cluster_.Cli({"status", LastRunId(r.out)});
  EXPECT_THAT(status.out, HasSubstr("package"));
  EXPECT_THAT(status.out, HasSubstr("skipped"));
  EXPECT_THAT(status.out, ::testing::ContainsRegex("publish +skipped"));
}

TEST_F(PipelineRun, IndependentStagesRunAtTheSameTimeOnTwoSlots) {
  cluster_.WriteFile("p.yml", WithMarks(R"(name: parallel
stages:
  - name: left
    image: dockyard/busybox
    run: |
      echo "start MARK"
      sleep 3
      echo "end MARK"
  - name: right
    image: dockyard/busybox
    run: |
      echo "start MARK"
      sleep 3
      echo "end MARK"
)"));
  CliResult r = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = LastRunId(r.out);
  Window left = WindowFromLog(cluster_.Cli({"logs", id, "left"}).out);
  Window right = WindowFromLog(cluster_.Cli({"logs", id, "right"}).out);
  EXPECT_LT(left.start, right.end);
  EXPECT_LT(right.start, left.end);
}

TEST_F(PipelineRun, AnImageNoRegistryHasFailsTheStageNamingTheImage) {
  cluster_.WriteFile("p.yml", R"(name: noimage
stages:
  - name: build
    image: dockyard/does-not-exist:1.0
    run: echo hi
)");
  CliResult r = cluster_.Cli({"run", "p.yml"});
  EXPECT_EQ(r.exit_code, 1);
  // Absent here, so the agent tries to pull it (there is no registry to give it).
  EXPECT_THAT(r.out, HasSubstr("build | ==> failed: pulling dockyard/does-not-exist:1.0 failed: "));
}

TEST_F(PipelineRun, InvalidPipelineIsRejectedWithFileAndLineBeforeAnythingRuns) {
  cluster_.WriteFile("bad.yml", R"(name: bad
stages:
  - name: build
    image: dockyard/busybox
    imagee: typo
    run: echo hi
)");
  CliResult r = cluster_.Cli({"run", "bad.yml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.yml:5:"));
  EXPECT_THAT(r.err, HasSubstr("imagee"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).err, HasSubstr("no run 1"));
}

TEST_F(PipelineRun, SourceTreeLandsInTheWorkdir) {
  cluster_.WriteFile("src/hello.txt", "hello from the source tree\n");
  cluster_.WriteFile("src/build/ignored.o", "junk\n");
  cluster_.WriteFile("src/.dockyardignore", "build/\n");
  cluster_.WriteFile("p.yml", R"(name: shipped
source: src
stages:
  - name: show
    image: dockyard/busybox
    workdir: /srv/app
    run: |
      pwd
      cat hello.txt
      test ! -e build/ignored.o && echo "ignored stays out"
)");
  CliResult r = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("show | /srv/app\n"));
  EXPECT_THAT(r.out, HasSubstr("show | hello from the source tree\n"));
  EXPECT_THAT(r.out, HasSubstr("show | ignored stays out\n"));
}

TEST_F(PipelineRun, AgentSigtermRemovesRunningContainersAndExitsCleanly) {
  cluster_.WriteFile("p.yml", R"(name: long
stages:
  - name: sleeper
    image: dockyard/busybox
    run: |
      echo started
      sleep 1000
)");
  std::thread cli([&] { cluster_.Cli({"run", "p.yml"}, absl::Seconds(60)); });
  const std::string filter = "docker ps -q --filter label=dockyard.agent=" + AgentName();
  for (int i = 0; i < 200 && Shell(filter).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_FALSE(Shell(filter).empty()) << "the stage never started";
  cluster_.agent(AgentName()).Signal(SIGTERM);
  EXPECT_EQ(cluster_.agent(AgentName()).Wait(absl::Seconds(20)), 0) << cluster_.agent(AgentName()).Log();
  EXPECT_EQ(Shell("docker ps -aq --filter label=dockyard.agent=" + AgentName()), "");
  cli.join();
  CliResult status = cluster_.Cli({"status", "1"});
  EXPECT_THAT(status.out, HasSubstr("cancelled"));
}

TEST_F(PipelineRun, ControllerShutsDownCleanlyOnSigterm) {
  cluster_.controller().Signal(SIGTERM);
  EXPECT_EQ(cluster_.controller().Wait(absl::Seconds(10)), 0) << cluster_.controller().Log();
}

}  // namespace
}  // namespace dockyard::testing
