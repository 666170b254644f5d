// The pipeline keys about images: `images:` (builds named once), a stage's `pull`
// policy and its `pull_secret`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/pipeline_parser.h"

namespace dockyard {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ImageKeys : public ::testing::Test {
 protected:
  ImageKeys() {
    std::string templ = ::testing::TempDir() + "/image_keys_XXXXXX";
    dir_ = ::mkdtemp(templ.data());
    std::filesystem::create_directories(dir_ + "/src/docker/dev");
  }
  ~ImageKeys() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<PipelineFile> Parse(const std::string& stages_and_more) {
    return ParsePipeline("name: p\nsource: src\n" + stages_and_more, "p.yml", dir_);
  }
  void ExpectError(const std::string& yaml, const std::string& prefix, const std::string& detail) {
    auto parsed = Parse(yaml);
    ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
    EXPECT_THAT(std::string(parsed.status().message()), StartsWith(prefix));
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(detail));
  }

  std::string dir_;
};

TEST_F(ImageKeys, AnImageNamedOnceIsBuiltForEveryStageThatUsesIt) {
  auto parsed = Parse(R"(images:
  dev:
    build: {context: docker/dev, args: {PY: "3.11"}}
stages:
  - name: test
    image: dev
    run: make test
  - name: other
    image: dockyard/busybox
    run: true
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::Stage& test = parsed->pipeline.stages(0);
  ASSERT_TRUE(test.has_image_build());
  EXPECT_EQ(test.image_build().context(), "docker/dev");
  EXPECT_EQ(test.image_build().dockerfile(), "docker/dev/Dockerfile");
  EXPECT_EQ(test.image_build().args().at("PY"), "3.11");
  EXPECT_EQ(test.image(), "dev (built from docker/dev/Dockerfile)");
  EXPECT_FALSE(parsed->pipeline.stages(1).has_image_build());
}

TEST_F(ImageKeys, BadImageDeclarationsNameTheLine) {
  ExpectError("images:\n  Dev_Image: {build: docker/dev}\nstages: []\n", "p.yml:4: ", "bad image name \"Dev_Image\"");
  ExpectError("images:\n  dev: {build: ../elsewhere}\nstages: []\n", "p.yml:4: ",
              "must be a path inside the pipeline's source");
  ExpectError("images:\n  dev: docker/dev\nstages: []\n", "p.yml:4: ", "\"image\"");
}

TEST_F(ImageKeys, PullPolicyAndPullSecret) {
  auto parsed = Parse(R"(stages:
  - name: a
    image: 127.0.0.1:5000/team/app:1
    pull: always
    pull_secret: REGISTRY_LOGIN
    run: true
  - name: b
    image: team/app
    pull: never
    run: true
  - name: c
    image: team/app
    run: true
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->pipeline.stages(0).pull(), v1::PULL_ALWAYS);
  EXPECT_EQ(parsed->pipeline.stages(0).pull_secret(), "REGISTRY_LOGIN");
  EXPECT_EQ(parsed->pipeline.stages(1).pull(), v1::PULL_NEVER);
  EXPECT_EQ(parsed->pipeline.stages(2).pull(), v1::PULL_IF_NOT_PRESENT);

  ExpectError("stages:\n  - name: a\n    image: x\n    pull: sometimes\n    run: true\n", "p.yml:6: ",
              "bad \"pull\" \"sometimes\" in stage \"a\": use \"if-not-present\" (the default), \"always\" or \"never\"");
  // A login in the pipeline itself is refused, without repeating it.
  ExpectError("stages:\n  - name: a\n    image: x\n    pull_secret: ci:hunter2\n    run: true\n", "p.yml:6: ",
              "the login itself never goes in the pipeline");
  auto login = Parse("stages:\n  - name: a\n    image: x\n    pull_secret: ci:hunter2\n    run: true\n");
  EXPECT_THAT(std::string(login.status().message()), Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace dockyard
