// The workflow Dockyard was born from, end to end: examples/wheels through a real
// controller, agent and Docker engine with real pip; the wheels in target/ must be
// valid and built with no network from exactly what the test stage cached.
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
  EXPECT_THAT(r.out, HasSubstr("Ran 6 tests"));
  // The build stage ran with no network: it checks for itself and says so, and
  // Dockyard records the network it gave the container.
  EXPECT_THAT(r.out, HasSubstr("build | network: none (only loopback)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("build \\| \\[dockyard\\] image dockyard/python, network none"));
  // The build stage started from exactly the snapshot the test stage left.
  const std::string marker = "test  | [dockyard] cache build: snapshot ";
  const size_t at = r.out.find(marker);
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string digest = r.out.substr(at + marker.size(), 64);
  EXPECT_THAT(r.out, HasSubstr("build | [dockyard] cache build at /build: starts from " + digest + " (from stage test"));

  const std::string check = absl::StrCat("python3 ", DOCKYARD_SOURCE_DIR, "/tests/e2e/check_wheels.py ", cluster.dir(),
                                         "/target --expect todobackend --expect dyx-slug --expect dyx-stamp",
                                         " --forbid dyx-checks 2>&1; echo exit=$?");
  const std::string checked = Shell(check);
  EXPECT_THAT(checked, HasSubstr("exit=0")) << checked;
  EXPECT_THAT(checked, HasSubstr("ok todobackend-1.0.0-py3-none-any.whl"));
}

}  // namespace
}  // namespace dockyard::testing
