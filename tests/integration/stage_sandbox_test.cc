// Stages run sandboxed by default, with the real engine (cgroup v1 here, as on the
// Debian 12 CI machine): no new privileges, a
// minimal capability set, pids and memory limits from the agent that a stage may
// lower but never raise, an out-of-memory kill reported as such, no network unless
// the agent allows it, no Docker socket and no host processes in sight. The engine
// keeps their output in its compact `local` log, sized for a restarted agent's replay.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class StageSandbox : public ::testing::Test {
 protected:
  void StartAgent(std::vector<std::string> flags = {}) {
    cluster_.StartController();
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 2, .flags = std::move(flags)});
    cluster_.WaitForAgents(1);
  }

  CliResult Run(const std::string& stage_yaml) {
    static int n = 0;
    const std::string file = cluster_.WriteFile(absl::StrCat("p", ++n, ".yml"),
                                                absl::StrCat("name: sandbox\nstages:\n  - name: s\n"
                                                             "    image: dockyard/busybox\n",
                                                             stage_yaml));
    return cluster_.Cli({"run", file});
  }

  const std::string agent_ = UniqueName("sandbox");
  Cluster cluster_;
};

TEST_F(StageSandbox, NoNewPrivilegesAndOnlyTheMinimalCapabilities) {
  StartAgent();
  CliResult r = Run("    run: grep -E '^(NoNewPrivs|CapEff|CapBnd)' /proc/self/status\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ContainsRegex("NoNewPrivs:\\s+1"));
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID: bits 0 1 3 4 5 6 7.
  EXPECT_THAT(r.out, ContainsRegex("CapEff:\\s+00000000000000fb"));
  EXPECT_THAT(r.out, ContainsRegex("CapBnd:\\s+00000000000000fb"));
  EXPECT_THAT(r.out, HasSubstr("sandbox: no new privileges; capabilities CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,"
                               "SETGID,SETUID only; memory 4.0 GiB (no swap); pids 4096"));
}

TEST_F(StageSandbox, SeesNeitherTheDockerSocketNorHostProcessesNorANetwork) {
  StartAgent();
  CliResult r = Run(
      "    run: |\n"
      "      ls /var/run/docker.sock /run/docker.sock 2>&1 || true\n"
      "      echo processes $(ls /proc | grep -c '^[0-9]')\n"
      "      echo interfaces $(ls /sys/class/net)\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("/var/run/docker.sock: No such file or directory"));
  EXPECT_THAT(r.out, ContainsRegex("processes [1-5]\n"));  // sh, ls, grep... not the host's hundreds
  EXPECT_THAT(r.out, HasSubstr("interfaces lo\n"));
}

TEST_F(StageSandbox, BridgeNetworkOnlyWhereTheAgentAllowsIt) {
  StartAgent();
  CliResult r = Run("    network: bridge\n    run: echo online\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("network bridge is not allowed on agent " + agent_));
  EXPECT_THAT(r.out, Not(HasSubstr("s | online")));
}

TEST_F(StageSandbox, ForkBombStopsAtThePidsLimitAndTheAgentStaysHealthy) {
  StartAgent();
  CliResult r = Run(
      "    limits: {pids: 32}\n"
      "    run: |\n"
      "      i=0; while [ $i -lt 200 ]; do (sleep 5 &) 2>/dev/null || true; i=$((i+1)); done\n"
      "      set -- /proc/[0-9]*; echo running $#\n");  // counted without forking
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("pids 32;"));
  // At most the limit, however many the loop tried to start.
  const size_t at = r.out.find("s | running ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_LE(std::stoi(r.out.substr(at + 12)), 32);
  // The agent still takes work.
  EXPECT_EQ(Run("    run: echo still here\n").exit_code, 0);
}

TEST_F(StageSandbox, MemoryHogIsKilledAndTheStageSaysOutOfMemory) {
  StartAgent();
  // A string that doubles for ever.
  CliResult r = Run("    limits: {memory: 64M}\n    run: awk 'BEGIN { s = \"x\"; for (;;) s = s s }'\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("out of memory: killed at its memory limit of 64.0 MiB"));
  EXPECT_EQ(Run("    run: echo still here\n").exit_code, 0);
}

TEST_F(StageSandbox, StageMayLowerButNeverRaiseTheAgentsLimits) {
  StartAgent({"--max_memory=256M", "--max_pids=500"});
  CliResult raised = Run("    limits: {memory: 2G, pids: 100000}\n"
                         "    run: cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max\n");
  ASSERT_EQ(raised.exit_code, 0) << raised.out << raised.err;
  EXPECT_THAT(raised.out, HasSubstr("s | 268435456\n"));
  EXPECT_THAT(raised.out, HasSubstr("s | 500\n"));
  EXPECT_THAT(raised.out, HasSubstr("the stage asked for memory 2.0 GiB, above this agent's limit"));
  CliResult lowered = Run("    limits: {memory: 128M, pids: 50}\n"
                          "    run: cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max\n");
  ASSERT_EQ(lowered.exit_code, 0) << lowered.out << lowered.err;
  EXPECT_THAT(lowered.out, HasSubstr("s | 134217728\n"));
  EXPECT_THAT(lowered.out, HasSubstr("s | 50\n"));
}

TEST_F(StageSandbox, TheEngineKeepsStageOutputInItsLocalLogWithRoomForTwiceTheAgentsLogLimit) {
  StartAgent({"--max_log_bytes=64M"});
  const std::string file = cluster_.WriteFile("slow.yml", "name: slow\nstages:\n  - name: s\n"
                                                          "    image: dockyard/busybox\n    run: echo up; sleep 30\n");
  auto run = cluster_.SpawnCli({"run", file});
  const std::string find = absl::StrCat("docker ps -q --filter label=dockyard.agent=", agent_);
  ASSERT_TRUE(Eventually([&] { return !Shell(find).empty(); }, absl::Seconds(30))) << run->Log();
  const std::string config = Shell(absl::StrCat("docker inspect --format '{{.HostConfig.LogConfig.Type}} ",
                                                "{{index .HostConfig.LogConfig.Config \"max-size\"}} ",
                                                "{{index .HostConfig.LogConfig.Config \"max-file\"}} ",
                                                "{{index .HostConfig.LogConfig.Config \"compress\"}}' $(", find, ")"));
  EXPECT_EQ(config, "local 67108864 2 false\n");
  // What a restarted agent replays: the engine's log has the output.
  EXPECT_TRUE(Eventually([&] { return Shell(absl::StrCat("docker logs $(", find, ") 2>&1")) == "up\n"; },
                         absl::Seconds(10)));
  EXPECT_EQ(cluster_.Cli({"cancel", "1"}).exit_code, 0);
  run->Wait(absl::Seconds(30));
}

TEST_F(StageSandbox, AnAgentRefusesALogDriverTheEngineCannotReplay) {
  cluster_.StartController();
  Process& agent = cluster_.StartAgent({.name = agent_, .flags = {"--container_log_driver=none"}});
  EXPECT_EQ(agent.Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(agent.Log(), HasSubstr("--container_log_driver=none: a restarted agent replays"));
}

}  // namespace
}  // namespace dockyard::testing
