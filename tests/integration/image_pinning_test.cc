// One image for a whole run, across hosts (two real extra engines): the image id a
// run's first stage ran is what every later stage runs, on any agent; a host whose
// image changed mid-run fails the stage naming both ids rather than run another
// image.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"
#include "tests/support/docker_engines.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTwoHosts[] = R"(name: pinned
stages:
  - name: first
    image: dockyard/busybox
    agent: {labels: [a]}
    run: sleep 3; echo first ran
  - name: second
    needs: [first]
    image: dockyard/busybox
    agent: {labels: [b]}
    run: echo second ran
)";

TEST(ImagePinning, LaterStagesOnOtherHostsRunTheImageTheRunStartedWithOrFailNamingTheDifference) {
  DockerEngine engine_a, engine_b;
  Cluster cluster;
  cluster.StartController();
  const std::string a = UniqueName("pin-a"), b = UniqueName("pin-b");
  cluster.StartAgent({.name = a, .labels = {"a"}, .flags = {"--docker_host=" + engine_a.host()}});
  cluster.StartAgent({.name = b, .labels = {"b"}, .flags = {"--docker_host=" + engine_b.host()}});
  cluster.WaitForAgents(2);
  std::string id = engine_a.Docker("image inspect --format '{{.Id}}' dockyard/busybox");
  id = std::string(absl::StripSuffix(absl::StripPrefix(id, "sha256:"), "\n"));
  ASSERT_EQ(id.size(), 64u) << id;

  // The same image on both hosts: both stages run it, and status shows it.
  CliResult same = cluster.Cli({"run", cluster.WriteFile("p.yml", kTwoHosts)});
  ASSERT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_THAT(same.out, HasSubstr("first  | [dockyard] image dockyard/busybox is sha256:" + id +
                                  " here; the run's later stages run that"));
  EXPECT_THAT(same.out, HasSubstr("second | [dockyard] image dockyard/busybox is sha256:" + id +
                                  ", as pinned for the run"));
  const std::string status = cluster.Cli({"status", "1", "--long"}).out;
  EXPECT_THAT(status, HasSubstr("  first                succeeded  attempt 1 on " + a + "\n      image dockyard/busybox  " + id));
  EXPECT_THAT(status, HasSubstr("  second               succeeded  attempt 1 on " + b + "\n      image dockyard/busybox  " + id));

  // Mid-run, host B's dockyard/busybox becomes another image: the later stage refuses it.
  auto run = cluster.SpawnCli({"run", cluster.WriteFile("p.yml", kTwoHosts)});
  cluster.WaitForStatus("2", "first                running");
  ASSERT_EQ(engine_b.Docker("tag dockyard/busybox dockyard/original && "
                            "tar -cf - --files-from /dev/null | docker -H " + engine_b.host() +
                            " import - dockyard/busybox:latest >/dev/null && echo retagged"),
            "retagged\n");
  EXPECT_EQ(run->Wait(absl::Seconds(60)), 1) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("image dockyard/busybox on agent " + b + " is sha256:"));
  EXPECT_THAT(run->Log(), HasSubstr("but this run's earlier stages ran sha256:" + id +
                                    ": the host's image differs, so the stage does not run"));
  EXPECT_THAT(run->Log(), Not(HasSubstr("second | second ran")));
}

}  // namespace
}  // namespace dockyard::testing
