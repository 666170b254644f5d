// Caches that travel between build hosts by snapshot, with real agents on several
// real Docker engines (tests/support/docker_engines.h): a stage on another host
// starts from exactly the snapshot the stage before it left, verified part by part;
// runs never share a writable cache; a read-only consumer cannot change it; a retry
// never sees what a failed attempt wrote.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "tests/support/cluster.h"
#include "tests/support/docker_engines.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// The digests `dockyard status --long` shows for one stage's cache: {in, out}.
std::pair<std::string, std::string> CacheDigests(const std::string& status, const std::string& stage) {
  const size_t at = status.find("\n  " + stage + " ");
  if (at == std::string::npos) return {};
  const size_t cache = status.find("      cache ", at);
  const size_t in = status.find("  in ", cache);
  const size_t out = status.find("  out ", in);
  const size_t end = status.find('\n', out);
  return {status.substr(in + 5, out - in - 5), status.substr(out + 6, end - out - 6)};
}

class CachesAcrossHosts : public ::testing::Test {
 protected:
  void StartAgentOn(const DockerEngine& engine, const std::string& name, const std::vector<std::string>& labels) {
    cluster_.StartAgent({.name = name, .labels = labels, .flags = {"--docker_host=" + engine.host()}});
  }
  Cluster cluster_;
};

TEST_F(CachesAcrossHosts, BuildOnAnotherHostMakesVerifiedWheelsFromTheSnapshotTheTestStageLeft) {
  DockerEngine engine_a({"dockyard/python", "dockyard/mariadb"});  // test and release run their db here
  DockerEngine engine_b({"dockyard/python"});
  cluster_.StartController();
  const std::string a = UniqueName("tester"), b = UniqueName("builder");
  StartAgentOn(engine_a, a, {"python"});
  StartAgentOn(engine_b, b, {"builder"});
  cluster_.WaitForAgents(2);
  // The example, with each stage sent to its own host.
  fs::copy(absl::StrCat(DOCKYARD_SOURCE_DIR, "/examples/wheels/src"), cluster_.dir() + "/src",
           fs::copy_options::recursive);
  std::string pipeline = ReadFile(absl::StrCat(DOCKYARD_SOURCE_DIR, "/examples/wheels/pipeline.yml"));
  pipeline.replace(pipeline.find("  - name: test\n"), 15, "  - name: test\n    agent: {labels: [python]}\n");
  pipeline.replace(pipeline.find("  - name: build\n"), 16, "  - name: build\n    agent: {labels: [builder]}\n");
  pipeline.replace(pipeline.find("  - name: release\n"), 18, "  - name: release\n    agent: {labels: [python]}\n");
  CliResult r = cluster_.Cli({"run", cluster_.WriteFile("pipeline.yml", pipeline), "--artifacts-dir=target"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("build   | [dockyard] cache build at /build: starts from "));
  EXPECT_THAT(r.out,
              ::testing::ContainsRegex("build   \\| .*restored; [0-9]+ parts \\([^)]*\\) fetched from the controller"));
  // Back on the first host, the release installs the wheels built on the second.
  EXPECT_THAT(r.out, HasSubstr("release | [dockyard] inputs: 4 artifact(s)"));
  EXPECT_THAT(r.out, HasSubstr("release | smoke ok: todobackend 1.0.0"));

  const std::string status = cluster_.Cli({"status", "1", "--long"}).out;
  const auto [test_in, test_out] = CacheDigests(status, "test");
  const auto [build_in, build_out] = CacheDigests(status, "build");
  EXPECT_EQ(test_out.size(), 64u) << status;
  EXPECT_EQ(build_in, test_out) << status;
  EXPECT_THAT(status, HasSubstr("caches: consistent"));
  EXPECT_EQ(AgentOfStage(status, "test"), a);
  EXPECT_EQ(AgentOfStage(status, "build"), b);
  EXPECT_EQ(AgentOfStage(status, "release"), a);

  const std::string checked = Shell(absl::StrCat("python3 ", DOCKYARD_SOURCE_DIR, "/tests/e2e/check_wheels.py ",
                                                 cluster_.dir(), "/target --expect todobackend --expect dyx-slug",
                                                 " --expect dyx-stamp --expect PyMySQL --forbid dyx-checks 2>&1; echo exit=$?"));
  EXPECT_THAT(checked, HasSubstr("exit=0")) << checked;
  // The run is over: neither host keeps a volume or a container of it.
  for (const DockerEngine* engine : {&engine_a, &engine_b}) {
    EXPECT_TRUE(Eventually([&] { return engine->Docker("volume ls -q --filter label=dockyard.run=1").empty(); },
                           absl::Seconds(10)));
    EXPECT_EQ(engine->Docker("ps -aq --filter label=dockyard.run=1"), "");
  }
}

TEST_F(CachesAcrossHosts, WhenTheHolderDiesAfterTheTestStageTheBuildRunsElsewhereFromTheSnapshot) {
  DockerEngine engine_a, engine_b;
  cluster_.StartController({"--lease_timeout=3s", "--heartbeat_interval=300ms"});
  const std::string a = UniqueName("holder"), b = UniqueName("spare");
  StartAgentOn(engine_a, a, {"first"});
  cluster_.WaitForAgents(1);
  auto run = cluster_.SpawnCli({"run", cluster_.WriteFile("p.yml", R"yml(name: handover
stages:
  - name: test
    image: dockyard/busybox
    agent: {labels: [first]}
    caches: {deps: /deps}
    run: mkdir -p /deps/lib && echo tested-content > /deps/lib/pkg.txt && ln -s lib/pkg.txt /deps/latest
  - name: build
    needs: [test]
    image: dockyard/busybox
    caches: {deps: /deps}
    run: cat /deps/latest
)yml")});
  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"status", "1"}).out.find("test                 succeeded") !=
                                      std::string::npos; },
                         absl::Seconds(30)));
  cluster_.agent(a).Signal(SIGKILL);
  cluster_.agent(a).Wait();
  StartAgentOn(engine_b, b, {"second"});
  ASSERT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  EXPECT_THAT(run->Log(), HasSubstr("build | tested-content"));
  const std::string status = cluster_.Cli({"status", "1", "--long"}).out;
  EXPECT_EQ(AgentOfStage(status, "build"), b) << status;
  EXPECT_EQ(CacheDigests(status, "build").first, CacheDigests(status, "test").second) << status;
  EXPECT_THAT(status, HasSubstr("caches: consistent"));
}

TEST_F(CachesAcrossHosts, AFlippedByteInAStoredSnapshotIsCaughtAndTheStageNeverRunsOnIt) {
  DockerEngine engine_a, engine_b;
  cluster_.StartController();
  StartAgentOn(engine_a, UniqueName("maker"), {"a"});
  StartAgentOn(engine_b, UniqueName("taker"), {"b"});
  cluster_.WaitForAgents(2);
  const std::string content = "the tested bytes\n";
  auto run = cluster_.SpawnCli({"run", cluster_.WriteFile("p.yml", R"yml(name: tamper
stages:
  - name: test
    image: dockyard/busybox
    agent: {labels: [a]}
    caches: {deps: /deps}
    run: echo "the tested bytes" > /deps/pkg.txt
  - name: pause
    needs: [test]
    image: dockyard/busybox
    agent: {labels: [a]}
    run: sleep 4
  - name: build
    needs: [pause]
    image: dockyard/busybox
    agent: {labels: [b]}
    caches: {deps: /deps}
    run: echo BUILD RAN; cat /deps/pkg.txt
)yml")});
  // While `pause` runs, the controller's copy of the file is damaged.
  const std::string digest = Sha256Hex(content);
  const std::string stored = absl::StrCat(cluster_.dir(), "/controller/caches/sha256/", digest.substr(0, 2), "/", digest);
  ASSERT_TRUE(Eventually([&] { return fs::exists(stored); }, absl::Seconds(30))) << run->Log();
  {
    std::fstream f(stored, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);
    f.put('X');
  }
  EXPECT_EQ(run->Wait(absl::Seconds(60)), 1) << run->Log();
  const std::string log = cluster_.Cli({"logs", "1", "build"}).out;
  EXPECT_THAT(log, HasSubstr(digest));
  EXPECT_THAT(log, HasSubstr("does not match its digest"));
  EXPECT_THAT(log, Not(HasSubstr("BUILD RAN")));
}

TEST_F(CachesAcrossHosts, AKeyedCacheMadeOnOneHostMakesTheFirstRunOnAnotherWarm) {
  DockerEngine engine_a, engine_c;
  cluster_.StartController();
  StartAgentOn(engine_a, UniqueName("first"), {"a"});
  StartAgentOn(engine_c, UniqueName("newcomer"), {"c"});
  cluster_.WaitForAgents(2);
  auto pipeline = [&](const std::string& label) {
    return cluster_.WriteFile("warm-" + label + ".yml", absl::StrCat(R"yml(name: warm
caches:
  deps: {key: deps-v1}
stages:
  - name: test
    image: dockyard/busybox
    agent: {labels: [)yml", label, R"yml(]}
    caches: {deps: /deps}
    run: |
      if [ -e /deps/downloaded ]; then echo "cache warm: made by $(cat /deps/downloaded)"
      else echo "cache cold"; echo "$DOCKYARD_AGENT" > /deps/downloaded; fi
)yml"));
  };
  CliResult first = cluster_.Cli({"run", pipeline("a")});
  ASSERT_EQ(first.exit_code, 0) << first.out;
  EXPECT_THAT(first.out, HasSubstr("cache cold"));
  CliResult second = cluster_.Cli({"run", pipeline("c")});
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_THAT(second.out, HasSubstr("cache warm: made by " + UniqueName("first")));
  EXPECT_THAT(second.out, HasSubstr("(key deps-v1, from run 1); restored;"));
}

TEST_F(CachesAcrossHosts, TwoRunsWithOneKeyStartedTogetherEachSeeOnlyTheirOwnWrites) {
  cluster_.StartController();
  cluster_.StartAgent({.name = UniqueName("shared"), .labels = {"linux"}, .slots = 2});
  cluster_.WaitForAgents(1);
  const std::string file = cluster_.WriteFile("race.yml", R"yml(name: race
caches:
  deps: {key: shared-v1}
stages:
  - name: write
    image: dockyard/busybox
    caches: {deps: /deps}
    run: |
      echo "$DOCKYARD_RUN_ID" > "/deps/mine-$DOCKYARD_RUN_ID"
      sleep 2
      others=$(ls /deps | grep -v "^mine-$DOCKYARD_RUN_ID$" | wc -l)
      echo "others: $others"
      [ "$others" = 0 ]
)yml");
  auto first = cluster_.SpawnCli({"run", file});
  auto second = cluster_.SpawnCli({"run", file});
  EXPECT_EQ(first->Wait(absl::Seconds(60)), 0) << first->Log();
  EXPECT_EQ(second->Wait(absl::Seconds(60)), 0) << second->Log();
  EXPECT_THAT(first->Log() + second->Log(), Not(HasSubstr("others: 1")));
  // The key's latest snapshot is one of the two, whole: exactly one run's file.
  CliResult after = cluster_.Cli({"run", cluster_.WriteFile("after.yml", R"yml(name: after
caches:
  deps: {key: shared-v1}
stages:
  - name: look
    image: dockyard/busybox
    caches: {deps: /deps}
    run: echo "files:" $(ls /deps | wc -l); cat /deps/mine-*
)yml")});
  ASSERT_EQ(after.exit_code, 0) << after.out;
  EXPECT_THAT(after.out, HasSubstr("files: 1"));
}

TEST_F(CachesAcrossHosts, AReadOnlyMountCannotBeWrittenAndARetryNeverSeesAFailedAttemptsWrites) {
  cluster_.StartController();
  cluster_.StartAgent({.name = UniqueName("careful"), .labels = {"linux"}});
  cluster_.WaitForAgents(1);
  CliResult r = cluster_.Cli({"run", cluster_.WriteFile("ro.yml", R"yml(name: ro
stages:
  - name: fill
    image: dockyard/busybox
    caches: {deps: /deps}
    run: echo base > /deps/base
  - name: check
    needs: [fill]
    image: dockyard/busybox
    caches: {deps: {path: /deps, read_only: true}}
    run: |
      if touch /deps/sneaky 2>/dev/null; then echo "wrote to a read-only cache"; exit 1; fi
      echo "read-only held"
  - name: flaky
    needs: [check]
    image: dockyard/busybox
    retries: 1
    caches: {deps: /deps}
    run: |
      if [ -e /deps/dirty ]; then echo "saw the failed attempt's writes"; exit 2; fi
      touch /deps/dirty
      if [ "$DOCKYARD_ATTEMPT" = 1 ]; then echo "attempt 1 fails after writing"; exit 1; fi
      echo "attempt $DOCKYARD_ATTEMPT started clean"
)yml")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("read-only held"));
  EXPECT_THAT(r.out, HasSubstr("attempt 2 started clean"));
  EXPECT_THAT(r.out, Not(HasSubstr("saw the failed attempt's writes")));
  const std::string status = cluster_.Cli({"status", "1", "--long"}).out;
  const auto [check_in, check_out] = CacheDigests(status, "check");
  EXPECT_EQ(check_in, check_out) << status;
  EXPECT_EQ(check_in, CacheDigests(status, "fill").second);
  EXPECT_EQ(CacheDigests(status, "flaky").first, check_in) << "attempt 2 started from what attempt 1 started from";
  EXPECT_THAT(status, HasSubstr("caches: consistent"));
}

TEST_F(CachesAcrossHosts, ARunCancelledWhileItsCacheHolderIsDownLeavesNothingOnceItReturns) {
  DockerEngine engine_a, engine_b;
  cluster_.StartController({"--lease_timeout=30s", "--heartbeat_interval=300ms"});
  const std::string a = UniqueName("away"), b = UniqueName("stays");
  StartAgentOn(engine_a, a, {"a"});
  StartAgentOn(engine_b, b, {"b"});
  cluster_.WaitForAgents(2);
  auto run = cluster_.SpawnCli({"run", cluster_.WriteFile("p.yml", R"yml(name: away
stages:
  - name: test
    image: dockyard/busybox
    agent: {labels: [a]}
    caches: {deps: /deps}
    run: echo made > /deps/made
  - name: build
    needs: [test]
    image: dockyard/busybox
    agent: {labels: [b]}
    caches: {deps: /deps}
    run: sleep 60
)yml")});
  ASSERT_TRUE(Eventually([&] { return !engine_b.Docker("ps -q --filter label=dockyard.run=1").empty(); },
                         absl::Seconds(30)));
  ASSERT_FALSE(engine_a.Docker("volume ls -q --filter label=dockyard.run=1").empty());
  cluster_.agent(a).Signal(SIGKILL);
  cluster_.agent(a).Wait();
  EXPECT_EQ(cluster_.Cli({"cancel", "1"}).exit_code, 0);
  EXPECT_EQ(run->Wait(absl::Seconds(30)), 5);
  EXPECT_TRUE(Eventually([&] { return engine_b.Docker("volume ls -q --filter label=dockyard.run=1").empty() &&
                                      engine_b.Docker("ps -aq --filter label=dockyard.run=1").empty(); },
                         absl::Seconds(15)));
  // The holder comes back: what it keeps of the finished run goes.
  StartAgentOn(engine_a, a, {"a"});
  EXPECT_TRUE(Eventually([&] { return engine_a.Docker("volume ls -q --filter label=dockyard.run=1").empty() &&
                                      engine_a.Docker("ps -aq --filter label=dockyard.run=1").empty(); },
                         absl::Seconds(15)))
      << engine_a.Docker("volume ls");
}

TEST_F(CachesAcrossHosts, KeyedCachesBeyondTheControllersLimitAreEvictedLeastRecentlyUsedFirst) {
  cluster_.StartController({"--cache_max_bytes=1M", "--cache_part_grace=0s"});
  cluster_.StartAgent({.name = UniqueName("keeper"), .labels = {"linux"}});
  cluster_.WaitForAgents(1);
  auto pipeline = [&](const std::string& key) {
    return cluster_.WriteFile(key + ".yml", absl::StrCat(R"yml(name: lru
caches:
  deps: {key: )yml", key, R"yml(}
stages:
  - name: fill
    image: dockyard/busybox
    caches: {deps: /deps}
    run: |
      if [ -e /deps/blob ]; then echo warm; else echo cold; head -c 700000 /dev/urandom > /deps/blob; fi
)yml"));
  };
  ASSERT_THAT(cluster_.Cli({"run", pipeline("first")}).out, HasSubstr("fill | cold"));
  const std::string first_listed = cluster_.Cli({"caches"}).out;
  EXPECT_THAT(first_listed, ::testing::ContainsRegex("deps +first +683\\.6 KiB +1 "));
  // A second key pushes the total past 1 MiB: the least recently used goes.
  ASSERT_THAT(cluster_.Cli({"run", pipeline("second")}).out, HasSubstr("fill | cold"));
  EXPECT_TRUE(Eventually([&] { return cluster_.Cli({"caches"}).out.find(" first ") == std::string::npos; },
                         absl::Seconds(10)));
  const std::string listed = cluster_.Cli({"caches"}).out;
  EXPECT_THAT(listed, HasSubstr(" second "));
  EXPECT_THAT(listed, HasSubstr("1 keyed cache(s), 683.6 KiB of 1.0 MiB"));
  EXPECT_THAT(cluster_.controller().Log(), HasSubstr("cache deps key first evicted"));
  // Its parts are gone from the controller's store; the kept key's stay.
  const std::string large_parts =
      absl::StrCat("find ", cluster_.dir(), "/controller/caches -type f -size +600k");
  EXPECT_TRUE(Eventually([&] { return Shell(large_parts + " | wc -l") == "1\n"; }, absl::Seconds(10)))
      << Shell(large_parts + " -printf '%p %s %TT\\n'") << cluster_.controller().Log();
  // The kept key is warm. The evicted one starts empty again (and, once it is
  // published anew, the other becomes the least recently used and goes: not
  // checked, as it depends on when the controller's next clean-up runs).
  EXPECT_THAT(cluster_.Cli({"run", pipeline("second")}).out, HasSubstr("fill | warm"));
  EXPECT_THAT(cluster_.Cli({"run", pipeline("first")}).out, HasSubstr("fill | cold"));
}

TEST_F(CachesAcrossHosts, InputsDeliverAProducersArtifactsByteIdenticalOnAnotherHost) {
  DockerEngine engine_a, engine_b;
  cluster_.StartController();
  StartAgentOn(engine_a, UniqueName("producer"), {"a"});
  StartAgentOn(engine_b, UniqueName("consumer"), {"b"});
  cluster_.WaitForAgents(2);
  CliResult r = cluster_.Cli({"run", cluster_.WriteFile("inputs.yml", R"yml(name: handoff
stages:
  - name: build
    image: dockyard/busybox
    agent: {labels: [a]}
    run: |
      mkdir -p /wheelhouse
      head -c 3000000 /dev/urandom > /wheelhouse/app-1.0-py3-none-any.whl
      echo small > /wheelhouse/dep-2.0-py3-none-any.whl
      cd /wheelhouse && sha256sum *.whl
    artifacts: [/wheelhouse/*.whl]
  - name: release
    needs: [build]
    image: dockyard/busybox
    agent: {labels: [b]}
    inputs: {build: /srv/wheelhouse}
    run: cd /srv/wheelhouse && sha256sum *.whl
)yml")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The same digests on both sides, for each file.
  for (const std::string name : {"app-1.0-py3-none-any.whl", "dep-2.0-py3-none-any.whl"}) {
    const size_t line = r.out.find("  " + name);
    ASSERT_NE(line, std::string::npos) << r.out;
    const std::string digest = r.out.substr(line - 64, 64);
    EXPECT_THAT(r.out, HasSubstr("release | " + digest + "  " + name)) << r.out;
  }
  EXPECT_THAT(r.out, HasSubstr("release | [dockyard] inputs: 2 artifact(s)"));
  const std::string status = cluster_.Cli({"status", "1"}).out;
  EXPECT_NE(AgentOfStage(status, "build"), AgentOfStage(status, "release"));
}

}  // namespace
}  // namespace dockyard::testing
