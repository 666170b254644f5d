// Hostile or careless input only ever gets a clear error, with real processes and
// the real engine: a source outside the pipeline's directory (by .. and by
// symlink), links that point out of the source tree, text that is not UTF-8, a
// script too long for a command line, two artifacts with one name. The agent stays
// connected and the next run goes through.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class HostileInput : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}});
    cluster_.WaitForAgents(1);
  }

  // No run was created and no source blob stored.
  void ExpectNothingSubmitted() {
    EXPECT_THAT(cluster_.Cli({"status", "1"}).err, HasSubstr("no run 1"));
    size_t blobs = 0;
    for (const auto& e : fs::recursive_directory_iterator(cluster_.dir() + "/controller/blobs/sha256")) {
      blobs += e.is_regular_file();
    }
    EXPECT_EQ(blobs, 0u);
  }

  // A run that must still go through: the agent is healthy.
  void ExpectAgentStillWorks() {
    CliResult r = cluster_.Cli({"run", cluster_.WriteFile("ok.yml", "name: ok\nstages:\n  - name: s\n"
                                                                    "    image: dockyard/busybox\n    run: echo fine\n")});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  const std::string agent_ = UniqueName("hostile");
  Cluster cluster_;
};

TEST_F(HostileInput, SourceOutsideThePipelinesDirectoryIsRefusedAndNothingIsUploaded) {
  cluster_.WriteFile("outside/secret.txt", "host secret\n");
  const std::string up = cluster_.WriteFile("project/up.yml", "name: up\nsource: ../outside\nstages:\n  - name: s\n"
                                                              "    image: dockyard/busybox\n    run: cat secret.txt\n");
  CliResult r = cluster_.Cli({"run", up});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("up.yml:2: source \"../outside\" resolves to " + cluster_.dir() + "/outside"));
  EXPECT_THAT(r.err, HasSubstr("outside the pipeline's directory"));

  fs::create_directory_symlink(cluster_.dir() + "/outside", cluster_.dir() + "/project/linked");
  const std::string linked = cluster_.WriteFile("project/linked.yml", "name: linked\nsource: linked\nstages:\n"
                                                                      "  - name: s\n    image: dockyard/busybox\n"
                                                                      "    run: cat secret.txt\n");
  r = cluster_.Cli({"run", linked});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("outside the pipeline's directory"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("host secret")));
  ExpectNothingSubmitted();
}

TEST_F(HostileInput, LinkInsideTheTreePointingOutIsShippedAsALinkNeverFollowed) {
  cluster_.WriteFile("secret.txt", "host secret\n");
  cluster_.WriteFile("project/src/readme", "inside\n");
  fs::create_symlink(cluster_.dir() + "/secret.txt", cluster_.dir() + "/project/src/escape");
  const std::string file = cluster_.WriteFile(
      "project/p.yml", "name: links\nsource: src\nstages:\n  - name: s\n    image: dockyard/busybox\n"
                       "    run: echo link to $(readlink escape); cat escape 2>/dev/null || echo not followed\n");
  CliResult r = cluster_.Cli({"run", file});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("s | link to " + cluster_.dir() + "/secret.txt"));
  EXPECT_THAT(r.out, HasSubstr("s | not followed"));
  EXPECT_THAT(r.out, Not(HasSubstr("host secret")));
}

TEST_F(HostileInput, PipelineThatIsNotUtf8IsRefusedNamingTheLine) {
  const std::string file = cluster_.WriteFile("latin1.yml", "name: latin\nstages:\n  - name: s\n"
                                                            "    image: dockyard/busybox\n    run: echo caf\xe9\n");
  CliResult r = cluster_.Cli({"run", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("latin1.yml:5: byte 0xe9 at column 18 is not UTF-8 text"));
  ExpectNothingSubmitted();
  ExpectAgentStillWorks();
}

TEST_F(HostileInput, ScriptTooLongForACommandLineIsRefusedBeforeSubmission) {
  const std::string file = cluster_.WriteFile(
      "long.yml", absl::StrCat("name: long\nstages:\n  - name: s\n    image: dockyard/busybox\n    run: echo ",
                               std::string(5 << 20, 'x'), "\n"));
  CliResult r = cluster_.Cli({"run", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("a pipeline file may hold at most"));
  const std::string medium = cluster_.WriteFile(
      "medium.yml", absl::StrCat("name: medium\nstages:\n  - name: s\n    image: dockyard/busybox\n    run: echo ",
                                 std::string(200 << 10, 'x'), "\n"));
  r = cluster_.Cli({"run", medium});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("medium.yml:5: \"run\" in stage \"s\" is 204805 bytes; at most 131071 fit"));
  ExpectNothingSubmitted();
  ExpectAgentStillWorks();
}

TEST_F(HostileInput, ArtifactNamedInBytesThatAreNotUtf8FailsTheStageClearly) {
  const std::string file = cluster_.WriteFile(
      "bytes.yml", "name: bytes\nstages:\n  - name: s\n    image: dockyard/busybox\n"
                   "    run: mkdir -p /out; touch \"/out/bad$(printf '\\377').txt\"\n    artifacts: [/out/*]\n");
  CliResult r = cluster_.Cli({"run", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("artifact /out/bad\\xff.txt has a name that is not UTF-8 text"));
  ExpectAgentStillWorks();
  EXPECT_THAT(cluster_.agent(agent_).Log(), Not(HasSubstr("session to controller ended")));
}

TEST_F(HostileInput, TwoArtifactsOfOneStageWithOneNameFailTheStageNamingBoth) {
  const std::string file = cluster_.WriteFile(
      "twice.yml", "name: twice\nstages:\n  - name: s\n    image: dockyard/busybox\n"
                   "    run: mkdir -p /a /b; echo a > /a/report.txt; echo b > /b/report.txt\n"
                   "    artifacts: [/a/report.txt, /b/report.txt]\n");
  CliResult r = cluster_.Cli({"run", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("two artifacts named report.txt: /a/report.txt and /b/report.txt"));
  EXPECT_FALSE(fs::exists(cluster_.dir() + "/target/report.txt"));
}

TEST(ArtifactLimits, HugeSparseArtifactIsRefusedBeforeItCostsScratchSpace) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = UniqueName("limits");
  cluster.StartAgent({.name = agent, .labels = {"linux"}, .flags = {"--max_artifact_bytes=10M", "--max_artifacts=3"}});
  cluster.WaitForAgents(1);
  // 10 GiB that take no disk in the container: copied whole, they would take 10 GiB here.
  CliResult sparse = cluster.Cli({"run", cluster.WriteFile("sparse.yml", "name: sparse\nstages:\n  - name: s\n"
                                                                         "    image: dockyard/busybox\n"
                                                                         "    run: mkdir -p /out; truncate -s 10G /out/big\n"
                                                                         "    artifacts: [/out/big]\n")});
  EXPECT_EQ(sparse.exit_code, 1);
  EXPECT_THAT(sparse.out, HasSubstr("the files under /out are more than 10485760 bytes, the agent's limit "
                                    "(--max_artifact_bytes)"));
  // The agent's work dir (identity, spool) stayed small: nothing near the limit was kept.
  EXPECT_LT(std::stoi(Shell(absl::StrCat("du -sk ", cluster.dir(), "/agent-", agent, " | cut -f1"))), 5 * 1024);
  // Too many files.
  CliResult many = cluster.Cli({"run", cluster.WriteFile("many.yml", "name: many\nstages:\n  - name: s\n"
                                                                     "    image: dockyard/busybox\n"
                                                                     "    run: mkdir -p /out; touch /out/a /out/b /out/c /out/d /out/e\n"
                                                                     "    artifacts: [/out/*]\n")});
  EXPECT_EQ(many.exit_code, 1);
  EXPECT_THAT(many.out, HasSubstr("5 files match the stage's artifacts; this agent publishes at most 3 (--max_artifacts)"));
  // And a stage within the limits publishes as usual.
  CliResult fine = cluster.Cli({"run", cluster.WriteFile("fine.yml", "name: fine\nstages:\n  - name: s\n"
                                                                     "    image: dockyard/busybox\n"
                                                                     "    run: mkdir -p /out; echo ok > /out/a\n"
                                                                     "    artifacts: [/out/a]\n")});
  EXPECT_EQ(fine.exit_code, 0) << fine.out << fine.err;
}

}  // namespace
}  // namespace dockyard::testing
