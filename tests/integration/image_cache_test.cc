// The agent's built images within --image_cache_bytes, with the real engine: past the
// limit the least recently used go first, and an image a running stage uses stays
// even when it is the least recently used.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool ImageOnEngine(const std::string& image) {
  return Shell("docker image inspect " + image + " >/dev/null 2>&1 && echo yes") == "yes\n";
}

class ImageCacheLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    int64_t base = 0;
    ASSERT_TRUE(absl::SimpleAtoi(
        absl::StripTrailingAsciiWhitespace(Shell("docker image inspect -f '{{.Size}}' dockyard/busybox")), &base));
    // Each image is the base plus 1 MiB: two fit, three do not.
    const int64_t each = base + (1 << 20);
    cluster_.StartController();
    cluster_.StartAgent({.name = agent_, .slots = 2,
                         .flags = {absl::StrCat("--image_cache_bytes=", 2 * each + (512 << 10))}});
    cluster_.WaitForAgents(1);
    for (const std::string name : {"a", "b", "c", "d"}) {
      cluster_.WriteFile("app/docker/" + name + "/Dockerfile",
                         absl::StrCat("FROM dockyard/busybox\nRUN head -c 1048576 /dev/urandom > /blob && echo image-",
                                      name, " > /name\n"));
      cluster_.WriteFile("app/" + name + ".yml",
                         absl::StrCat("name: cache-", name, "\nsource: .\nstages:\n  - name: use\n    image: {build: docker/",
                                      name, "}\n    run: cat /name; [ ! -e /workspace/hold ] || sleep 300\n"));
    }
  }
  void TearDown() override {
    Shell(absl::StrCat("docker image ls -q --filter label=dockyard.built-by=", agent_,
                       " | xargs -r docker rmi -f >/dev/null 2>&1"));
  }

  // Runs the pipeline using image `name`; returns the tag it ran.
  std::string Use(const std::string& name, std::string* output = nullptr) {
    CliResult r = cluster_.Cli({"run", cluster_.dir() + "/app/" + name + ".yml"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("use | image-" + name));
    if (output != nullptr) *output = r.out;
    std::smatch m;
    if (!std::regex_search(r.out, m, std::regex("image (dockyard/built:[0-9a-f]{32})"))) return "none";
    return m[1];
  }

  const std::string agent_ = UniqueName("imagecache");
  Cluster cluster_;
};

TEST_F(ImageCacheLimit, TheLeastRecentlyUsedGoFirstButNeverAnImageARunningStageUses) {
  const std::string a = Use("a");
  const std::string b = Use("b");
  // A stage holds image a (the file in the source makes it wait)...
  cluster_.WriteFile("app/hold", "");
  auto holding = cluster_.SpawnCli({"run", cluster_.dir() + "/app/a.yml"});
  cluster_.WaitForStatus("3", "running");
  std::filesystem::remove(cluster_.dir() + "/app/hold");
  // ...then b is used after it, so a is the least recently used, but in use.
  EXPECT_EQ(Use("b"), b);
  std::string out;
  const std::string c = Use("c", &out);
  EXPECT_THAT(out, HasSubstr("image cache: removed " + b + " ("));
  EXPECT_THAT(out, HasSubstr("the least recently used) to keep this agent's built images within"));
  EXPECT_THAT(out, Not(HasSubstr("removed " + a)));
  EXPECT_TRUE(ImageOnEngine(a));
  EXPECT_FALSE(ImageOnEngine(b));
  EXPECT_TRUE(ImageOnEngine(c));

  // Once the stage is over, a is just the least recently used.
  ASSERT_EQ(cluster_.Cli({"cancel", "3"}).exit_code, 0);
  EXPECT_EQ(holding->Wait(absl::Seconds(60)), 5) << holding->Log();
  const std::string d = Use("d", &out);
  EXPECT_THAT(out, HasSubstr("image cache: removed " + a + " ("));
  EXPECT_FALSE(ImageOnEngine(a));
  EXPECT_TRUE(ImageOnEngine(c));
  EXPECT_TRUE(ImageOnEngine(d));
}

}  // namespace
}  // namespace dockyard::testing
