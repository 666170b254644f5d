// The CLI as a CI console uses it, with real processes: idempotent submission and
// re-attachment (also after the CLI is SIGKILLed), --detach and watch, --json,
// JUnit reports that validate against the schema kept in the repository, test
// reports collected from stages, same-named artifacts from two stages, and output
// without escape sequences when piped; and every binary's --version.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

class CliForCi : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 2});
    cluster_.WaitForAgents(1);
  }

  const std::string agent_ = UniqueName("ci-agent");
  Cluster cluster_;
};

TEST_F(CliForCi, SubmittingTwiceWithOneKeyMakesOneRun) {
  const std::string file = cluster_.WriteFile("once.yml", "name: once\nstages:\n  - name: s\n"
                                                          "    image: dockyard/busybox\n    run: echo once\n");
  CliResult first = cluster_.Cli({"run", file, "--idempotency-key=build-42", "--detach", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  CliResult second = cluster_.Cli({"run", file, "--idempotency-key=build-42", "--detach", "--json"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  auto a = nlohmann::json::parse(first.out);
  auto b = nlohmann::json::parse(second.out);
  EXPECT_EQ(a["run_id"], b["run_id"]);
  EXPECT_FALSE(a["existing"].get<bool>());
  EXPECT_TRUE(b["existing"].get<bool>());
  EXPECT_THAT(cluster_.Cli({"status", "2"}).err, HasSubstr("no run 2"));
  // Another key is another run; the key survives a controller restart.
  cluster_.controller().Signal(SIGTERM);
  ASSERT_EQ(cluster_.controller().Wait(), 0);
  cluster_.StartController();
  EXPECT_EQ(nlohmann::json::parse(cluster_.Cli({"run", file, "--idempotency-key=build-42", "--detach", "--json"}).out)["run_id"],
            a["run_id"]);
  EXPECT_EQ(cluster_.Cli({"run", file, "--idempotency-key=build-43", "--detach"}).out, "2\n");
}

TEST_F(CliForCi, CliKilledMidRunFollowsTheSameRunToItsEndWithTheWholeLogExactlyOnce) {
  const std::string file = cluster_.WriteFile(
      "slow.yml", "name: slow\nstages:\n  - name: count\n    image: dockyard/busybox\n"
                  "    run: for i in $(seq 1 30); do echo line-$i; sleep 0.1; done\n");
  auto cli = cluster_.SpawnCli({"run", file, "--idempotency-key=jenkins-7-build"});
  ASSERT_TRUE(Eventually([&] { return cli->Log().find("line-5\n") != std::string::npos; }, absl::Seconds(30)))
      << cli->Log();
  cli->Signal(SIGKILL);
  cli->Wait();

  CliResult again = cluster_.Cli({"run", file, "--idempotency-key=jenkins-7-build"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("was submitted before with this idempotency key"));
  for (int i = 1; i <= 30; ++i) EXPECT_EQ(Count(again.out, absl::StrCat("line-", i, "\n")), 1) << i;
  EXPECT_THAT(cluster_.Cli({"status", "2"}).err, HasSubstr("no run 2"));
}

TEST_F(CliForCi, WatchFollowsARunSubmittedDetachedLikeRunDoes) {
  const std::string file = cluster_.WriteFile(
      "detached.yml", "name: detached\nstages:\n  - name: make\n    image: dockyard/busybox\n"
                      "    run: sleep 1; mkdir -p /out; echo made > /out/thing.txt; echo made it\n"
                      "    artifacts: [/out/thing.txt]\n");
  CliResult submitted = cluster_.Cli({"run", file, "--detach"});
  ASSERT_EQ(submitted.exit_code, 0);
  EXPECT_EQ(submitted.out, "1\n");
  CliResult watched = cluster_.Cli({"watch", "1", "--artifacts-dir=watched"});
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("make | made it"));
  EXPECT_THAT(watched.out, HasSubstr("run 1 succeeded"));
  EXPECT_EQ(ReadFile(cluster_.dir() + "/watched/thing.txt"), "made\n");
}

TEST_F(CliForCi, JunitReportOfPassingFailingSkippedAndRetriedStagesValidates) {
  const std::string file = cluster_.WriteFile(
      "mixed.yml",
      "name: mixed\nstages:\n"
      "  - name: unit\n    image: dockyard/busybox\n"
      "    run: mkdir -p /reports; printf '<testsuite name=\"app\" tests=\"1\"><testcase name=\"t\"/></testsuite>' > /reports/app.xml\n"
      "    reports: {junit: /reports/*.xml}\n"
      "  - name: flaky\n    image: dockyard/busybox\n    retries: 1\n"
      "    run: echo 'something <broke> & \"badly\"'; exit 3\n"
      "  - name: after\n    image: dockyard/busybox\n    needs: flaky\n    run: echo never\n");
  CliResult r = cluster_.Cli({"run", file, "--junit=junit/dockyard.xml"});
  EXPECT_EQ(r.exit_code, 1);
  const std::string report = cluster_.dir() + "/junit/dockyard.xml";
  ASSERT_TRUE(fs::exists(report)) << r.err;
  const std::string xsd = std::string(DOCKYARD_FIXTURES) + "/junit/junit.xsd";
  const std::string lint = Shell(absl::StrCat("xmllint --noout --schema ", xsd, " ", report, " 2>&1; echo exit=$?"));
  EXPECT_THAT(lint, HasSubstr("exit=0")) << lint;
  const std::string xml = ReadFile(report);
  EXPECT_EQ(Count(xml, "<testcase "), 3);
  EXPECT_THAT(xml, HasSubstr("classname=\"mixed\" name=\"unit\""));
  EXPECT_THAT(xml, HasSubstr("<failure message=\"failed: exit code 3\""));
  EXPECT_THAT(xml, HasSubstr("something &lt;broke&gt; &amp; &quot;badly&quot;"));  // the log's tail
  EXPECT_THAT(xml, HasSubstr("attempt 2 on agent " + agent_));
  EXPECT_THAT(xml, HasSubstr("<skipped message="));
  // The stage's own test report landed beside the artifacts, per stage.
  EXPECT_THAT(ReadFile(cluster_.dir() + "/target/reports/unit/app.xml"), HasSubstr("testsuite name=\"app\""));
}

TEST_F(CliForCi, TwoStagesMayPublishTheSameFileNameAndBothLand) {
  const std::string file = cluster_.WriteFile(
      "same.yml", "name: same\nstages:\n"
                  "  - name: a\n    image: dockyard/busybox\n    run: mkdir -p /out; echo from-a > /out/report.txt\n"
                  "    artifacts: [/out/report.txt]\n"
                  "  - name: b\n    image: dockyard/busybox\n    run: mkdir -p /out; echo from-b > /out/report.txt\n"
                  "    artifacts: [/out/report.txt]\n");
  CliResult r = cluster_.Cli({"run", file});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(ReadFile(cluster_.dir() + "/target/a/report.txt"), "from-a\n");
  EXPECT_EQ(ReadFile(cluster_.dir() + "/target/b/report.txt"), "from-b\n");
  EXPECT_THAT(r.out, HasSubstr("target/a/report.txt"));
  auto listed = nlohmann::json::parse(cluster_.Cli({"artifacts", "1", "--json"}).out);
  ASSERT_EQ(listed["artifacts"].size(), 2u);
  EXPECT_EQ(listed["artifacts"][0]["name"], "report.txt");
}

TEST_F(CliForCi, JsonOutputHasTheDocumentedFieldsAndPipedOutputNoEscapes) {
  const std::string file = cluster_.WriteFile("j.yml", "name: j\nstages:\n  - name: s\n    image: dockyard/busybox\n"
                                                       "    run: echo hello\n");
  CliResult run = cluster_.Cli({"run", file});
  ASSERT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(run.err.find('\x1b'), std::string::npos);
  auto status = nlohmann::json::parse(cluster_.Cli({"status", "1", "--json"}).out);
  EXPECT_EQ(status["run_id"], "1");
  EXPECT_EQ(status["pipeline"], "j");
  EXPECT_EQ(status["state"], "succeeded");
  EXPECT_EQ(status["stages"][0]["name"], "s");
  EXPECT_EQ(status["stages"][0]["attempt"], 1);
  EXPECT_EQ(status["stages"][0]["agent"], agent_);
  auto agents = nlohmann::json::parse(cluster_.Cli({"agents", "--json"}).out);
  EXPECT_EQ(agents["agents"][0]["name"], agent_);
  EXPECT_EQ(agents["agents"][0]["state"], "connected");
  EXPECT_EQ(agents["agents"][0]["slots"], 2);
}

// A CI log that records tool versions gets Dockyard's, not Abseil's build note.
TEST(DockyardBinaries, VersionPrintsTheProgramAndItsVersion) {
  for (const std::string program : {"cli/dockyard", "agent/dockyard-agent", "controller/dockyard-controller"}) {
    const std::string name = program.substr(program.find('/') + 1);
    EXPECT_EQ(Shell(absl::StrCat(DOCKYARD_BIN_DIR, "/", program, " --version; echo exit=$?")),
              absl::StrCat(name, " ", DOCKYARD_VERSION, "\nexit=0\n"));
  }
}

}  // namespace
}  // namespace dockyard::testing
