// Images built from a Dockerfile in the shipped source, with the real engine: the
// stage runs on what the Dockerfile baked in, an unchanged image is reused, a changed
// Dockerfile rebuilds, and a broken one fails the stage with the build's own error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class ImageBuild : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    cluster_.StartAgent({.name = agent_, .labels = {"linux"}, .slots = 1});
    cluster_.WaitForAgents(1);
    cluster_.WriteFile("app/docker/dev/baked.txt", "baked into the image\n");
    cluster_.WriteFile("app/src/main.txt", "application source\n");
  }
  void TearDown() override {
    // The images this test's agent built (other tests' agents keep theirs).
    Shell(absl::StrCat("docker image ls -q --filter label=dockyard.built-by=", agent_,
                       " | xargs -r docker rmi -f >/dev/null 2>&1"));
  }

  void WriteDockerfile(const std::string& extra) {
    cluster_.WriteFile("app/docker/dev/Dockerfile", absl::StrCat("FROM dockyard/busybox\n"
                                                                 "ARG FLAVOUR=plain\n"
                                                                 "COPY baked.txt /baked.txt\n"
                                                                 "RUN echo \"flavour $FLAVOUR\" > /flavour.txt\n",
                                                                 extra));
  }

  CliResult Run() {
    return cluster_.Cli({"run", cluster_.WriteFile("app/pipeline.yml", R"yml(name: built
source: .
stages:
  - name: test
    image:
      build:
        context: docker/dev
        dockerfile: docker/dev/Dockerfile
        args: {FLAVOUR: spicy}
    run: cat /baked.txt /flavour.txt && cat /workspace/src/main.txt
)yml")});
  }

  const std::string agent_ = UniqueName("imagebuild");
  Cluster cluster_;
};

TEST_F(ImageBuild, TheStageRunsOnTheImageItsDockerfileBuildsWhichIsReusedUntilTheDockerfileChanges) {
  WriteDockerfile("");
  CliResult first = Run();
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.out, ContainsRegex("image dockyard/built:[0-9a-f]{32}: building from docker/dev/Dockerfile "
                                       "\\(context docker/dev, no network\\)"));
  EXPECT_THAT(first.out, ContainsRegex("build: Step 1/[0-9]+ : FROM dockyard/busybox"));
  EXPECT_THAT(first.out, ContainsRegex("image dockyard/built:[0-9a-f]{32} built in "));
  EXPECT_THAT(first.out, HasSubstr("test | baked into the image"));
  EXPECT_THAT(first.out, HasSubstr("test | flavour spicy"));
  EXPECT_THAT(first.out, HasSubstr("test | application source"));

  // The same inputs again: nothing is built.
  CliResult second = Run();
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_THAT(second.out, ContainsRegex("image dockyard/built:[0-9a-f]{32} reused: built before on this host"));
  EXPECT_THAT(second.out, Not(HasSubstr("build: Step")));
  EXPECT_THAT(second.out, HasSubstr("test | flavour spicy"));

  // A changed Dockerfile builds anew.
  WriteDockerfile("RUN echo second edition >> /flavour.txt\n");
  CliResult third = Run();
  ASSERT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_THAT(third.out, HasSubstr(": building from docker/dev/Dockerfile"));
  EXPECT_THAT(third.out, HasSubstr("test | second edition"));
  EXPECT_EQ(Shell(absl::StrCat("docker image ls -q --filter label=dockyard.built-by=", agent_, " | wc -l")), "2\n");
}

TEST_F(ImageBuild, TheWholeSourceMayBeTheContext) {
  cluster_.WriteFile("app/Dockerfile", "FROM dockyard/busybox\nCOPY src/main.txt /from-the-root.txt\n");
  CliResult r = cluster_.Cli({"run", cluster_.WriteFile("app/root.yml", R"yml(name: built
source: .
stages:
  - name: test
    image: {build: .}
    run: cat /from-the-root.txt
)yml")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(": building from Dockerfile (context ., no network)"));
  EXPECT_THAT(r.out, HasSubstr("test | application source"));
}

TEST_F(ImageBuild, ABrokenDockerfileFailsTheStageWithTheBuildError) {
  WriteDockerfile("RUN echo 'the build step breaks' && exit 3\n");
  CliResult r = Run();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("build: the build step breaks"));
  EXPECT_THAT(r.out, HasSubstr("the image build failed: The command '/bin/sh -c echo 'the build step breaks' && "
                               "exit 3' returned a non-zero code: 3"));
  EXPECT_THAT(r.out, Not(HasSubstr("test | baked into the image")));
}

TEST_F(ImageBuild, PathsOutsideTheSourceAreRefusedBeforeAnythingRuns) {
  CliResult r = cluster_.Cli({"run", cluster_.WriteFile("app/outside.yml", R"yml(name: built
source: .
stages:
  - name: test
    image: {build: {context: ../.., dockerfile: Dockerfile}}
    run: true
)yml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("outside.yml:5: \"context\" in \"image: build\" of stage \"test\" must be a path "
                               "inside the pipeline's source, got \"../..\""));
}

}  // namespace
}  // namespace dockyard::testing
