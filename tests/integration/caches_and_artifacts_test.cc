// Build-cache volumes and artifact publishing with real processes and the real
// engine: what one stage writes to a cache the next reads; keyed caches outlive
// runs; artifacts arrive byte-identical in target/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CachesAndArtifacts : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    agent_ = absl::StrCat("ca-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ::getpid());
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 2});
    cluster_.WaitForAgents(1);
  }
  Cluster cluster_;
  std::string agent_;
};

TEST_F(CachesAndArtifacts, LaterStageReadsWhatAnEarlierStageWroteToTheCache) {
  cluster_.WriteFile("p.yml", R"(name: cached
stages:
  - name: fill
    image: dockyard/busybox
    caches: {deps: /deps}
    run: echo "filled by fill" > /deps/marker
  - name: use
    image: dockyard/busybox
    needs: [fill]
    caches: {deps: /cache}
    run: cat /cache/marker
)");
  CliResult r = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("use  | filled by fill\n"));
  // An unkeyed cache belongs to its run: it is removed once the run is over.
  std::string volumes;
  for (int i = 0; i < 50; ++i) {
    volumes = Shell("docker volume ls -q --filter label=dockyard.agent=" + agent_);
    if (volumes.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(volumes, "");
}

TEST_F(CachesAndArtifacts, KeyedCacheSurvivesIntoTheNextRun) {
  cluster_.WriteFile("deps.txt", "left-pad==1.0\n");
  cluster_.WriteFile("p.yml", R"(name: warm
caches:
  deps:
    key_files: [deps.txt]
stages:
  - name: test
    image: dockyard/busybox
    caches: {deps: /deps}
    run: |
      if [ -e /deps/downloaded ]; then echo "cache warm: nothing to download"
      else echo "cache cold: downloading"; echo yes > /deps/downloaded; fi
)");
  CliResult first = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.out, HasSubstr("cache cold: downloading"));
  CliResult second = cluster_.Cli({"run", "p.yml"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_THAT(second.out, HasSubstr("cache warm: nothing to download"));
  // A change to the key files means a new, cold cache.
  cluster_.WriteFile("deps.txt", "left-pad==2.0\n");
  CliResult third = cluster_.Cli({"run", "p.yml"});
  EXPECT_THAT(third.out, HasSubstr("cache cold: downloading"));
}

TEST_F(CachesAndArtifacts, LargeArtifactArrivesByteIdentical) {
  cluster_.WriteFile("p.yml", R"(name: big
stages:
  - name: make
    image: dockyard/busybox
    run: |
      mkdir -p /out
      head -c 200000000 /dev/urandom > /out/big.bin
      sha256sum /out/big.bin
    artifacts: [/out/*.bin]
)");
  CliResult r = cluster_.Cli({"run", "p.yml", "--artifacts-dir=target"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string path = cluster_.dir() + "/target/big.bin";
  ASSERT_TRUE(std::filesystem::exists(path)) << r.out;
  EXPECT_EQ(std::filesystem::file_size(path), 200000000u);
  const std::string local = Shell("sha256sum " + path + " | cut -d' ' -f1");
  ASSERT_EQ(local.size(), 65u);
  EXPECT_THAT(r.out, HasSubstr("make | " + local.substr(0, 64) + "  /out/big.bin"));
  // Nothing half-written is left next to it.
  EXPECT_EQ(Shell("ls " + cluster_.dir() + "/target"), "big.bin\n");
}

TEST_F(CachesAndArtifacts, GlobMatchingNothingFailsTheStageUnlessOptional) {
  cluster_.WriteFile("p.yml", R"(name: globs
stages:
  - name: strict
    image: dockyard/busybox
    run: mkdir -p /out && echo hi > /out/a.txt
    artifacts: [/out/*.whl]
  - name: relaxed
    image: dockyard/busybox
    run: echo nothing to publish
    artifacts:
      - {path: /out/*.whl, optional: true}
)");
  CliResult r = cluster_.Cli({"run", "p.yml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("artifact pattern /out/*.whl matched no file"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("relaxed +\\| ==> succeeded"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("strict +\\| ==> failed"));
}

TEST_F(CachesAndArtifacts, ArtifactsCanBeListedAndFetchedLater) {
  cluster_.WriteFile("p.yml", R"(name: later
stages:
  - name: make
    image: dockyard/busybox
    run: mkdir -p /dist && echo one > /dist/one.txt && echo two > /dist/two.txt
    artifacts: [/dist/*.txt]
)");
  CliResult r = cluster_.Cli({"run", "p.yml", "--no-artifacts"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(std::filesystem::exists(cluster_.dir() + "/target"));
  CliResult list = cluster_.Cli({"artifacts", "1"});
  EXPECT_THAT(list.out, HasSubstr("one.txt"));
  EXPECT_THAT(list.out, HasSubstr("two.txt"));
  CliResult fetch = cluster_.Cli({"artifacts", "1", "--dest=out"});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err;
  EXPECT_EQ(ReadFile(cluster_.dir() + "/out/two.txt"), "two\n");
}

}  // namespace
}  // namespace dockyard::testing
