// Service containers beside a stage, with the real engine: one loopback-only network
// shared by the stage and its services (reached by name and by 127.0.0.1), ready
// probes, services that never get ready or die, their kept logs, and nothing left of
// them after success, failure, cancel, timeout and an agent restart.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// A web server on 127.0.0.1:8080 that serves what it saw of itself.
constexpr char kWebService[] = R"yml(
      - name: web
        image: dockyard/busybox
        env: {GREETING: hello-from-web}
        run: |
          mkdir -p /www
          echo "$GREETING" > /www/index.html
          echo "run $DOCKYARD_RUN_ID stage $DOCKYARD_STAGE attempt $DOCKYARD_ATTEMPT" > /www/ci
          ls /sys/class/net | tr '\n' ' ' > /www/interfaces
          grep -E '^(NoNewPrivs|CapEff)' /proc/self/status
          echo "web serving"
          exec httpd -f -p 127.0.0.1:8080 -h /www
        ready: wget -q -O /dev/null http://127.0.0.1:8080/
)yml";

class Services : public ::testing::Test {
 protected:
  void Start(const std::string& lease = "") {
    std::vector<std::string> flags;
    if (!lease.empty()) flags = {"--lease_timeout=" + lease, "--heartbeat_interval=300ms"};
    cluster_.StartController(flags);
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 2});
    cluster_.WaitForAgents(1);
  }

  std::string Pipeline(const std::string& stage_yaml, const std::string& services_yaml) {
    static int n = 0;
    return cluster_.WriteFile(absl::StrCat("services", ++n, ".yml"),
                              absl::StrCat("name: with-services\nstages:\n  - name: s\n    image: dockyard/busybox\n",
                                           stage_yaml, "    services:", services_yaml));
  }

  // Every container this test's agent made (stages, services, network holders).
  std::string Containers() {
    return Shell(absl::StrCat("docker ps -aq --filter label=dockyard.agent=", agent_));
  }

  const std::string agent_ = UniqueName("services");
  Cluster cluster_;
};

TEST_F(Services, AStageReachesItsServiceByNameAndLoopbackOnlyAndItsLogIsKept) {
  Start();
  CliResult r = cluster_.Cli({"run", Pipeline(R"yml(    run: |
      echo "by name: $(wget -q -O - http://web:8080/)"
      echo "by address: $(wget -q -O - http://127.0.0.1:8080/)"
      echo "service saw: $(wget -q -O - http://web:8080/ci)"
      echo "service interfaces: $(wget -q -O - http://web:8080/interfaces)"
      echo "stage interfaces: $(ls /sys/class/net | tr '\n' ' ')"
)yml",
                                                  kWebService)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("services web: one loopback-only network with the stage"));
  EXPECT_THAT(r.out, HasSubstr("service web ready after"));
  EXPECT_THAT(r.out, HasSubstr("s | by name: hello-from-web"));
  EXPECT_THAT(r.out, HasSubstr("s | by address: hello-from-web"));
  EXPECT_THAT(r.out, HasSubstr("s | service saw: run 1 stage s attempt 1"));
  EXPECT_THAT(r.out, HasSubstr("s | service interfaces: lo \n"));
  EXPECT_THAT(r.out, HasSubstr("s | stage interfaces: lo \n"));
  EXPECT_THAT(r.out, HasSubstr("the same for each service"));

  // Its log is kept with the run, and it ran with the stage's hardening.
  CliResult log = cluster_.Cli({"logs", "1", "s", "--service", "web"});
  ASSERT_EQ(log.exit_code, 0) << log.err;
  EXPECT_THAT(log.out, HasSubstr("web serving"));
  EXPECT_THAT(log.out, ContainsRegex("NoNewPrivs:\\s+1"));
  EXPECT_THAT(log.out, ContainsRegex("CapEff:\\s+00000000000000fb"));
  CliResult unknown = cluster_.Cli({"logs", "1", "s", "--service", "db"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("keeps no log of a service db of stage s (it keeps: web)"));
  // A service log is not an artifact: nothing lands in target/.
  EXPECT_THAT(cluster_.Cli({"artifacts", "1"}).out, Not(HasSubstr("web.log")));

  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, TheStageWaitsUntilEveryServiceIsReady) {
  Start();
  CliResult r = cluster_.Cli({"run", Pipeline("    run: echo STAGE RAN\n",
                                              R"yml(
      - name: slow
        image: dockyard/busybox
        run: |
          echo "slow starting"
          sleep 2
          touch /tmp/ready
          exec sleep 600
        ready: test -e /tmp/ready
)yml")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const size_t ready = r.out.find("service slow ready after");
  const size_t ran = r.out.find("s | STAGE RAN");
  ASSERT_NE(ready, std::string::npos) << r.out;
  ASSERT_NE(ran, std::string::npos) << r.out;
  EXPECT_LT(ready, ran);
  EXPECT_THAT(r.out, ContainsRegex("service slow ready after ([2-9]|[1-9][0-9]+)(\\.[0-9]+)?s"));  // >= 2s
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, AServiceThatNeverGetsReadyFailsTheStageInTimeNamingItWithItsLogTail) {
  Start();
  const absl::Time began = absl::Now();
  CliResult r = cluster_.Cli({"run", Pipeline("    run: echo STAGE RAN\n", R"yml(
      - name: db
        image: dockyard/busybox
        run: |
          echo "db booting"
          echo "db: cannot find its data files" >&2
          exec sleep 600
        ready: test -e /tmp/never
        ready_timeout: 3s
)yml")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_LT(absl::Now() - began, absl::Seconds(30));
  EXPECT_THAT(r.out, HasSubstr("service db was not ready within 3s (ready: test -e /tmp/never"));
  EXPECT_THAT(r.out, HasSubstr("db: cannot find its data files"));
  EXPECT_THAT(r.out, Not(HasSubstr("STAGE RAN")));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, HasSubstr("service db was not ready within 3s"));
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, AServiceThatExitsBeforeItIsReadyFailsTheStageNamingIt) {
  Start();
  CliResult r = cluster_.Cli({"run", Pipeline("    run: echo STAGE RAN\n", R"yml(
      - name: db
        image: dockyard/busybox
        run: |
          echo "db: bad configuration"
          exit 3
        ready: test -e /tmp/never
)yml")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("service db exited with code 3 before it was ready"));
  EXPECT_THAT(r.out, HasSubstr("db: bad configuration"));
  EXPECT_THAT(r.out, Not(HasSubstr("STAGE RAN")));
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, AServiceThatDiesWhileTheStageRunsIsReported) {
  Start();
  // The stage itself tells the service when to die (a CGI script), so the service
  // is surely up when the stage first reaches it, however loaded the machine is.
  CliResult r = cluster_.Cli({"run", Pipeline(R"yml(    run: |
      wget -q -O - http://flaky:8080/
      wget -q -O - http://flaky:8080/cgi-bin/die
      sleep 3
      wget -q -O - http://flaky:8080/ || { echo "flaky is gone"; exit 1; }
)yml",
                                              R"yml(
      - name: flaky
        image: dockyard/busybox
        run: |
          mkdir -p /www/cgi-bin && echo up > /www/index.html
          printf '#!/bin/sh\ntouch /tmp/die\necho "Content-Type: text/plain"\necho\necho dying\n' > /www/cgi-bin/die
          chmod +x /www/cgi-bin/die
          httpd -p 127.0.0.1:8080 -h /www
          while [ ! -e /tmp/die ]; do sleep 0.1; done
          echo "flaky: out of disk space"
          exit 7
        ready: wget -q -O /dev/null http://127.0.0.1:8080/
)yml")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("s | dying"));
  EXPECT_THAT(r.out, HasSubstr("service flaky exited with code 7; its last lines:"));
  EXPECT_THAT(r.out, HasSubstr("flaky: out of disk space"));
  EXPECT_THAT(r.out, HasSubstr("flaky is gone"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, HasSubstr("exit code 1 (service flaky exited with code 7)"));
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, NothingOfThemIsLeftAfterATimeoutOrACancel) {
  Start();
  const std::string services = R"yml(
      - name: idle
        image: dockyard/busybox
        run: exec sleep 600
)yml";
  CliResult timed_out = cluster_.Cli({"run", Pipeline("    timeout: 2s\n    run: sleep 60\n", services)});
  EXPECT_EQ(timed_out.exit_code, 1) << timed_out.out;
  EXPECT_THAT(timed_out.out, HasSubstr("timed out"));
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();

  auto run = cluster_.SpawnCli({"run", Pipeline("    run: sleep 60\n", services)});
  cluster_.WaitForStatus("2", "running");
  EXPECT_FALSE(Containers().empty());
  EXPECT_EQ(cluster_.Cli({"cancel", "2"}).exit_code, 0);
  EXPECT_EQ(run->Wait(absl::Seconds(30)), 5) << run->Log();
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, AnAgentRestartedMidStageTakesItsServicesOverAndRemovesThemAfter) {
  Start("15s");
  auto run = cluster_.SpawnCli({"run", Pipeline(R"yml(    run: |
      echo "before: $(wget -q -O - http://web:8080/)"
      sleep 4
      echo "after: $(wget -q -O - http://web:8080/)"
)yml",
                                                kWebService)});
  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"logs", "1", "s"}).out.find("before: hello") != std::string::npos; },
                         absl::Seconds(30)));
  cluster_.agent(agent_).Signal(SIGKILL);
  cluster_.agent(agent_).Wait();
  cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 2});
  EXPECT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  const std::string log = cluster_.Cli({"logs", "1", "s"}).out;
  EXPECT_THAT(log, HasSubstr("took this container over again"));
  EXPECT_THAT(log, HasSubstr("after: hello-from-web"));
  EXPECT_THAT(cluster_.Cli({"logs", "1", "s", "--service", "web"}).out, HasSubstr("web serving"));
  EXPECT_TRUE(Eventually([&] { return Containers().empty(); }, absl::Seconds(10))) << Containers();
}

TEST_F(Services, BadServicesAreRefusedNamingTheLine) {
  Start();
  CliResult r = cluster_.Cli({"run", Pipeline("    run: true\n", R"yml(
      - name: Web_1
        image: dockyard/busybox
)yml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ContainsRegex("services[0-9]+\\.yml:7: bad service name \"Web_1\""));
  r = cluster_.Cli({"run", Pipeline("    run: true\n", R"yml(
      - name: db
        image: dockyard/busybox
        ready_timeout: soon
)yml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ContainsRegex("services[0-9]+\\.yml:9: \"ready_timeout\" in service \"db\" of stage \"s\""));
}

}  // namespace
}  // namespace dockyard::testing
