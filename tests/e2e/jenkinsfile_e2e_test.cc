// jenkins/Jenkinsfile.example run through the Jenkins stand-in (Groovy) against a
// real controller, agent and Docker engine: the stand-in's `sh` runs the real CLI.
// The wheels are archived, both JUnit reports recorded, the release stage installs
// from the wheelhouse alone; and an abort in the middle leaves no container behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class JenkinsfileExample : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController();
    cluster_.StartAgent({.name = agent_, .labels = {"linux", "python"}, .slots = 2});
    cluster_.WaitForAgents(1);
    token_file_ = cluster_.CreateToken("submit", "jenkins");
  }

  // Runs the Jenkinsfile in the stand-in; returns what the build recorded.
  nlohmann::json RunJenkinsfile(const std::string& abort_on_line = "") {
    const std::string repo = DOCKYARD_SOURCE_DIR;
    const std::string summary = workspace_ + ".json";
    const std::string command = absl::StrCat(
        "env DOCKYARD_CONTROLLER=", cluster_.address(), " DOCKYARD_TOKEN_FILE=", token_file_,
        " DOCKYARD_CA_PATH=", cluster_.ca_file(), " PATH=", Bin("cli"), ":$PATH",
        abort_on_line.empty() ? "" : absl::StrCat(" ABORT_ON_LINE='", abort_on_line, "'"),
        " groovy -cp ", repo, "/jenkins/test ", repo, "/jenkins/test/RunJenkinsfile.groovy ", repo, " ", workspace_,
        " ", summary, " > ", workspace_, ".log 2>&1");
    std::system(command.c_str());
    const std::string text = ReadFile(summary);
    EXPECT_FALSE(text.empty()) << ReadFile(workspace_ + ".log");
    return text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text);
  }

  static std::vector<nlohmann::json> Steps(const nlohmann::json& build, const std::string& name) {
    std::vector<nlohmann::json> out;
    for (const auto& step : build["steps"]) {
      if (step["name"] == name) out.push_back(step["args"]);
    }
    return out;
  }

  const std::string agent_ = UniqueName("jenkins-e2e");
  Cluster cluster_;
  std::string token_file_;
  const std::string workspace_ = cluster_.dir() + "/jenkins-workspace";
};

TEST_F(JenkinsfileExample, ArchivesTheWheelsRecordsBothReportsAndReleasesFromTheWheelhouse) {
  const nlohmann::json build = RunJenkinsfile();
  ASSERT_EQ(build["result"], "SUCCESS") << build.dump(2) << ReadFile(workspace_ + ".log");

  const auto archived = Steps(build, "archiveArtifacts");
  ASSERT_EQ(archived.size(), 1u);
  EXPECT_EQ(archived[0]["artifacts"], "target/*.whl");
  EXPECT_EQ(archived[0]["fingerprint"], true);
  for (const char* wheel : {"todobackend-1.0.0-py3-none-any.whl", "dyx_slug-0.1.0-py3-none-any.whl",
                            "dyx_stamp-0.2.0-py3-none-any.whl"}) {
    EXPECT_TRUE(fs::exists(workspace_ + "/target/" + wheel)) << wheel;
  }

  const auto junit = Steps(build, "junit");
  ASSERT_EQ(junit.size(), 1u);
  EXPECT_EQ(junit[0]["testResults"], "target/dockyard-junit.xml,target/reports/**/*.xml");
  const std::string xsd = std::string(DOCKYARD_FIXTURES) + "/junit/junit.xsd";
  const std::string lint = Shell(absl::StrCat("xmllint --noout --schema ", xsd, " ", workspace_,
                                              "/target/dockyard-junit.xml 2>&1; echo exit=$?"));
  EXPECT_THAT(lint, HasSubstr("exit=0")) << lint;
  // The application's own unit tests, reported from inside the test stage.
  EXPECT_THAT(ReadFile(workspace_ + "/target/reports/test/todobackend.xml"), HasSubstr("<testcase"));

  std::string console;
  for (const auto& line : build["console"]) console += line.get<std::string>() + "\n";
  EXPECT_THAT(console, HasSubstr("test    | ==> succeeded"));  // the live log, stage by stage
  EXPECT_THAT(console, HasSubstr("released todobackend"));
  EXPECT_EQ(console.find(ReadFile(token_file_).substr(0, 40)), std::string::npos);
}

TEST_F(JenkinsfileExample, AbortInTheMiddleLeavesNoContainerBehind) {
  const nlohmann::json build = RunJenkinsfile("test    | [dockyard] cache build");
  EXPECT_EQ(build["result"], "ABORTED") << build.dump(2);
  bool cancelled = false;
  for (const auto& sh : Steps(build, "sh")) cancelled |= sh["script"].get<std::string>().rfind("dockyard cancel", 0) == 0;
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(Eventually([&] { return Shell("docker ps -q --filter label=dockyard.agent=" + agent_).empty(); },
                         absl::Seconds(5)))
      << Shell("docker ps --filter label=dockyard.agent=" + agent_);
  EXPECT_THAT(cluster_.Cli({"status", "1"}).out, HasSubstr("cancelled"));
}

}  // namespace
}  // namespace dockyard::testing
