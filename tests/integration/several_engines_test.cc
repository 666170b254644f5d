// Several build hosts on one machine: each agent drives its own Docker engine
// (an extra dockerd from tests/support/docker_engines.h, chosen with --docker_host
// as the Docker CLI would), and a stage runs in the engine of the agent it was
// placed on — never in another host's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"
#include "tests/support/docker_engines.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

TEST(SeveralEngines, EachAgentRunsItsStagesInItsOwnEngine) {
  auto engine_a = std::make_unique<DockerEngine>();
  auto engine_b = std::make_unique<DockerEngine>();
  const std::string engine_a_dir = engine_a->dir();
  {
    Cluster cluster;
    cluster.StartController();
    const std::string host_a = UniqueName("host-a");
    const std::string host_b = UniqueName("host-b");
    cluster.StartAgent({.name = host_a, .labels = {"a"}, .flags = {"--docker_host=" + engine_a->host()}});
    cluster.StartAgent({.name = host_b, .labels = {"b"}, .flags = {"--docker_host=" + engine_b->host()}});
    cluster.WaitForAgents(2);
    // Only engine B has this image: a stage that must run on A cannot use it.
    ASSERT_THAT(engine_b->Docker("tag dockyard/busybox dockyard/only-on-b"), ::testing::IsEmpty());

    auto run = cluster.SpawnCli({"run", cluster.WriteFile("hosts.yml", R"(name: hosts
stages:
  - name: on-a
    image: dockyard/busybox
    agent: {labels: [a]}
    run: sleep 2; echo ran on a
  - name: on-b
    image: dockyard/only-on-b
    agent: {labels: [b]}
    run: sleep 2; echo ran on b
)")});
    EXPECT_TRUE(Eventually(
        [&] {
          return engine_a->Docker("ps -q --filter label=dockyard.agent=" + host_a) != "" &&
                 engine_b->Docker("ps -q --filter label=dockyard.agent=" + host_b) != "";
        },
        absl::Seconds(30)));
    // Nothing of theirs runs in the main engine, nor in the other host's.
    EXPECT_EQ(Shell("docker ps -q --filter label=dockyard.agent=" + host_a), "");
    EXPECT_EQ(engine_b->Docker("ps -q --filter label=dockyard.agent=" + host_a), "");
    EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
    EXPECT_THAT(run->Log(), HasSubstr("on-a | ran on a"));
    EXPECT_THAT(run->Log(), HasSubstr("on-b | ran on b"));
    const std::string status = cluster.Cli({"status", "1"}).out;
    EXPECT_EQ(AgentOfStage(status, "on-a"), host_a);
    EXPECT_EQ(AgentOfStage(status, "on-b"), host_b);
  }
  // The harness leaves nothing: the engines stop and their data goes.
  engine_a.reset();
  engine_b.reset();
  EXPECT_FALSE(std::filesystem::exists(engine_a_dir));
}

TEST(SeveralEngines, AgentRefusesAnEngineAddressThatIsNotALocalSocket) {
  Cluster cluster;
  cluster.StartController();
  Process& agent = cluster.StartAgent({.name = UniqueName("remote"), .flags = {"--docker_host=tcp://127.0.0.1:2375"}});
  EXPECT_EQ(agent.Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(agent.Log(), HasSubstr("the agent needs a local engine, as unix:///path/to/docker.sock"));
}

}  // namespace
}  // namespace dockyard::testing
