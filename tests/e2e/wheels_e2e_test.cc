// The workflow Dockyard was born from, end to end: examples/wheels through a real
// controller, agent and Docker engine with real pip and a real MariaDB service; the
// wheels in target/ must be valid and built with no network from exactly what the
// test stage cached and tested, and the release stage installs from them alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

TEST(WheelWorkflow, TestedDependenciesBecomeVerifiedWheelsInTarget) {
  Cluster cluster;
  cluster.StartController();
  const std::string agent = absl::StrCat("e2e-wheels-", ::getpid());
  cluster.StartAgent({.name = agent, .labels = {"linux", "python"}, .slots = 2});
  cluster.WaitForAgents(1);

  const std::string pipeline = absl::StrCat(DOCKYARD_SOURCE_DIR, "/examples/wheels/pipeline.yml");
  CliResult r = cluster.Cli({"run", pipeline, "--artifacts-dir=target"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The unit tests and the store's tests against the db service all ran, none skipped.
  EXPECT_THAT(r.out, HasSubstr("test    | [dockyard] service db ready after"));
  EXPECT_THAT(r.out, HasSubstr("Ran 12 tests"));
  EXPECT_THAT(r.out, HasSubstr("test_it_is_a_real_mariadb_server"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("skipped")));
  const std::string report = ReadFile(cluster.dir() + "/target/reports/test/todobackend.xml");
  EXPECT_THAT(report, ::testing::ContainsRegex("tests=\"12\""));
  EXPECT_THAT(report, HasSubstr("MySQLTodoStoreTest"));
  // The build stage ran with no network: it checks for itself and says so, and
  // Dockyard records the network it gave the container.
  EXPECT_THAT(r.out, HasSubstr("build   | network: none (only loopback)"));
  // Test and build ran on the one dev image the agent built from docker/dev/Dockerfile
  // (or found built by an earlier run: its tag is the digest of what goes in).
  EXPECT_THAT(r.out, ::testing::ContainsRegex("test    \\| \\[dockyard\\] image (dockyard/built:[0-9a-f]{32}): "
                                              "building from docker/dev/Dockerfile|test    \\| \\[dockyard\\] image "
                                              "dockyard/built:[0-9a-f]{32} reused"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("build   \\| \\[dockyard\\] image dockyard/built:[0-9a-f]{32} reused: "
                                              "built before on this host from docker/dev/Dockerfile"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("build   \\| \\[dockyard\\] image dockyard/built:[0-9a-f]{32}, network none"));
  // The build stage started from exactly the snapshot the test stage left.
  const std::string marker = "test    | [dockyard] cache build: snapshot ";
  const size_t at = r.out.find(marker);
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string digest = r.out.substr(at + marker.size(), 64);
  EXPECT_THAT(r.out, HasSubstr("build   | [dockyard] cache build at /build: starts from " + digest + " (from stage test"));

  const std::string check = absl::StrCat("python3 ", DOCKYARD_SOURCE_DIR, "/tests/e2e/check_wheels.py ", cluster.dir(),
                                         "/target --expect todobackend --expect dyx-slug --expect dyx-stamp --expect PyMySQL",
                                         " --forbid dyx-checks 2>&1; echo exit=$?");
  const std::string checked = Shell(check);
  EXPECT_THAT(checked, HasSubstr("exit=0")) << checked;
  EXPECT_THAT(checked, HasSubstr("ok todobackend-1.0.0-py3-none-any.whl"));

  // The release stage got build's wheels as its input, installed the application
  // from them alone (no index, no network) and checked it against its own database.
  EXPECT_THAT(r.out, ::testing::ContainsRegex("release \\| \\[dockyard\\] inputs: 4 artifact\\(s\\)"));
  for (const char* dist : {"todobackend 1.0.0", "dyx-slug 0.1.0", "dyx-stamp 0.2.0", "PyMySQL 1.0.2"}) {
    EXPECT_THAT(r.out, ::testing::ContainsRegex(absl::StrCat("release \\| installed ", dist,
                                                             " from file:///wheelhouse/[^ ]+\\.whl\n")));
  }
  size_t installed = 0;
  for (size_t at = r.out.find("release | installed "); at != std::string::npos;
       at = r.out.find("release | installed ", at + 1)) {
    ++installed;
  }
  EXPECT_EQ(installed, 4u) << "the release installed something beyond the four wheels:\n" << r.out;
  EXPECT_THAT(r.out, HasSubstr("release | smoke ok: todobackend 1.0.0 stored, completed and removed todo "
                               "'release-todobackend-1-0-0' in 10.11"));
}

}  // namespace
}  // namespace dockyard::testing
