#include "common/pipeline_parser.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/sha256.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kPipelines = std::string(DOCKYARD_FIXTURES) + "/pipelines";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

// A directory under the test's temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "/pipeline_parser_XXXXXX";
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

absl::Status Parse(const std::string& yaml) {
  return ParsePipeline(yaml, "p.yml", kPipelines).status();
}

// Asserts an INVALID_ARGUMENT whose message begins with `prefix` and mentions `detail`.
void ExpectError(const absl::Status& status, const std::string& prefix, const std::string& detail) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith(prefix));
  EXPECT_THAT(std::string(status.message()), HasSubstr(detail));
}

// The smallest valid stage, for tests about the keys around it.
constexpr char kMinimal[] = R"(name: p
stages:
  - name: test
    image: alpine
    run: make
)";

std::string KeyFilesHash(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string data;
  for (const auto& [path, contents] : files) {
    data += path;
    data.push_back('\0');
    data += contents;
    data.push_back('\0');
  }
  return Sha256Hex(data).substr(0, 16);
}

TEST(PipelineParser, ParsesFullExampleIntoExpectedProto) {
  absl::StatusOr<PipelineFile> parsed = ParsePipelineFile(kPipelines + "/valid.yml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  v1::Pipeline expected;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"pb(
    name: "todobackend"
    caches { name: "build" }
    caches { name: "pip" }
    stages {
      name: "test"
      image: "dockyard/python"
      workdir: "/application"
      env { key: "PIP_NO_INPUT" value: "1" }
      run: "python -m unittest\n"
      shell: [ "bash", "-e", "-c" ]
      network: "none"
      timeout_ms: 600000
      caches { name: "build" path: "/build" }
      agent_labels: [ "linux", "python" ]
      retries: 0
      line: 9
    }
    stages {
      name: "wheels"
      image: "dockyard/python"
      workdir: "/workspace"
      env { key: "RETRIES" value: "3" }
      env { key: "VERBOSE" value: "true" }
      run: "pip wheel -w /wheelhouse ."
      shell: [ "sh", "-e", "-c" ]
      needs: "test"
      network: "bridge"
      timeout_ms: 5400000
      caches { name: "build" path: "/build" }
      caches { name: "pip" path: "/root/.cache/pip" }
      artifacts { pattern: "/wheelhouse/*.whl" }
      artifacts { pattern: "/reports/*.xml" optional: true }
      retries: 2
      line: 21
    }
  )pb", &expected));
  expected.set_file(kPipelines + "/valid.yml");
  expected.mutable_caches(0)->set_key(
      "deps-v1-" +
      KeyFilesHash({{"requirements.txt", ReadFile(kPipelines + "/requirements.txt")},
                    {"requirements_test.txt", ReadFile(kPipelines + "/requirements_test.txt")}}));

  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed->pipeline, expected))
      << "got:\n" << parsed->pipeline.DebugString() << "want:\n" << expected.DebugString();
  EXPECT_EQ(parsed->source_dir, fs::absolute(kPipelines + "/src").lexically_normal().string());
  EXPECT_TRUE(parsed->pipeline.source_digest().empty());
}

TEST(PipelineParser, AppliesDefaultsForWorkdirShellAndNetwork) {
  absl::StatusOr<PipelineFile> parsed = ParsePipeline(kMinimal, "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::Stage& stage = parsed->pipeline.stages(0);
  EXPECT_EQ(stage.workdir(), "/workspace");
  EXPECT_THAT(stage.shell(), ::testing::ElementsAre("sh", "-e", "-c"));
  EXPECT_EQ(stage.network(), "none");
  EXPECT_EQ(stage.timeout_ms(), 0);
  EXPECT_EQ(stage.retries(), 0);
  EXPECT_EQ(stage.line(), 3);
  EXPECT_EQ(parsed->pipeline.file(), "p.yml");
  EXPECT_TRUE(parsed->source_dir.empty());
  EXPECT_EQ(parsed->pipeline.caches_size(), 0);
}

TEST(PipelineParser, AcceptsASingleStringAsNeeds) {
  absl::StatusOr<PipelineFile> parsed = ParsePipeline(std::string(kMinimal) + R"(
  - name: deploy
    image: alpine
    run: make deploy
    needs: test
)", "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->pipeline.stages(1).needs(), ::testing::ElementsAre("test"));
}

TEST(PipelineParser, SecretsAreNamesOnlyAndMayNotAlsoBeInEnv) {
  absl::StatusOr<PipelineFile> parsed = ParsePipeline(std::string(kMinimal) + "    secrets: [DB_PASSWORD, API_KEY]\n",
                                                      "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->pipeline.stages(0).secrets(), ::testing::ElementsAre("DB_PASSWORD", "API_KEY"));
  ExpectError(Parse(std::string(kMinimal) + "    secrets: [db-password]\n"), "p.yml:6: ",
              "bad secret name \"db-password\" in stage \"test\"");
  ExpectError(Parse(std::string(kMinimal) + "    env: {TOKEN: x}\n    secrets: TOKEN\n"), "p.yml:3: ",
              "\"TOKEN\" in stage \"test\" is both in \"env\" and in \"secrets\"");
}

TEST(PipelineParser, PipelineEnvGoesUnderEachStagesOwnAndItsSecrets) {
  absl::StatusOr<PipelineFile> parsed = ParsePipeline(R"(name: p
env: {LANG: C.UTF-8, MODE: ci, TOKEN: not-a-secret}
stages:
  - name: a
    image: alpine
    run: make
    env: {MODE: release}
    secrets: [TOKEN]
  - name: b
    image: alpine
    run: make
)", "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::Stage& a = parsed->pipeline.stages(0);
  EXPECT_EQ(a.env().at("LANG"), "C.UTF-8");
  EXPECT_EQ(a.env().at("MODE"), "release") << "the stage's own value wins";
  EXPECT_EQ(a.env().count("TOKEN"), 0u) << "the stage's secret wins";
  EXPECT_EQ(parsed->pipeline.stages(1).env().at("MODE"), "ci");
  ExpectError(Parse("name: p\nenv: {1BAD: x}\nstages: []\n"), "p.yml:2: ", "bad environment variable name \"1BAD\" at top level");
}

TEST(PipelineParser, ServicesGetDefaultsAndThePipelineEnvUnderTheirOwn) {
  absl::StatusOr<PipelineFile> parsed = ParsePipeline(R"(name: p
env: {MODE: ci, LANG: C.UTF-8}
stages:
  - name: test
    image: python
    run: make test
    services:
      - name: db
        image: dockyard/mariadb
        env: {MODE: service}
        ready: mysqladmin ping -h 127.0.0.1
        ready_timeout: 90s
      - name: cache-1
        image: redis
        run: redis-server --port 6380
)", "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::Stage& stage = parsed->pipeline.stages(0);
  ASSERT_EQ(stage.services_size(), 2);
  const v1::Service& db = stage.services(0);
  EXPECT_EQ(db.image(), "dockyard/mariadb");
  EXPECT_EQ(db.ready(), "mysqladmin ping -h 127.0.0.1");
  EXPECT_EQ(db.ready_timeout_ms(), 90000);
  EXPECT_EQ(db.env().at("MODE"), "service") << "the service's own value wins";
  EXPECT_EQ(db.env().at("LANG"), "C.UTF-8");
  EXPECT_EQ(db.line(), 8);
  const v1::Service& cache = stage.services(1);
  EXPECT_EQ(cache.run(), "redis-server --port 6380");
  EXPECT_EQ(cache.ready(), "");
  EXPECT_EQ(cache.ready_timeout_ms(), 60000);
}

TEST(PipelineParser, BadServicesAreRefusedNamingTheirLine) {
  const std::string head = "name: p\nstages:\n  - name: t\n    image: i\n    run: r\n    services:\n";
  ExpectError(Parse(head + "      - name: DB\n        image: m\n"), "p.yml:7: ", "bad service name \"DB\"");
  ExpectError(Parse(head + "      - name: db_1\n        image: m\n"), "p.yml:7: ", "it is a host name");
  ExpectError(Parse(head + "      - name: db\n"), "p.yml:7: ", "missing required key \"image\" in service \"db\"");
  ExpectError(Parse(head + "      - {name: db, image: m}\n      - {name: db, image: n}\n"), "p.yml:8: ",
              "two services named \"db\"");
  ExpectError(Parse(head + "      - {name: db, image: m, ready: \"  \"}\n"), "p.yml:7: ", "\"ready\" in service \"db\"");
  ExpectError(Parse(head + "      - {name: db, image: m, ready_timeout: 0s}\n"), "p.yml:7: ", "must be positive");
  ExpectError(Parse(head + "      - {name: db, image: m, ports: [3306]}\n"), "p.yml:7: ", "ports");
  ExpectError(Parse(head + "      db: m\n"), "p.yml:6: ", "\"services\" in stage \"t\" must be a list");
}

TEST(PipelineParser, InputsNameAStageTheStageNeedsAndAnAbsoluteDirectory) {
  const std::string two = R"(name: p
stages:
  - name: build
    image: alpine
    run: make
  - name: release
    image: alpine
    run: install
)";
  absl::StatusOr<PipelineFile> parsed =
      ParsePipeline(two + "    needs: [build]\n    inputs: {build: /wheelhouse}\n", "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->pipeline.stages(1).inputs().at("build"), "/wheelhouse");
  ExpectError(Parse(two + "    inputs: {build: /wheelhouse}\n"), "p.yml:6: ",
              "names stage \"build\", which is not in its \"needs\"");
  ExpectError(Parse(two + "    needs: [build]\n    inputs: {build: wheelhouse}\n"), "p.yml:10: ",
              "must go to an absolute directory");
}

TEST(PipelineParser, RejectsUnknownStageKeyWithFileAndLine) {
  std::string path = kPipelines + "/unknown_stage_key.yml";
  absl::Status status = ParsePipelineFile(path).status();
  ExpectError(status, path + ":7: ",
              "unknown key \"imagee\" in stage \"test\" (expected one of: name, image, workdir");
}

TEST(PipelineParser, RejectsUnknownTopLevelKeyWithLine) {
  ExpectError(Parse("name: p\nsauce: src\nstages: []\n"), "p.yml:2: ",
              "unknown key \"sauce\" at top level (expected one of: name, source, env, caches, images, stages)");
}

TEST(PipelineParser, RejectsUnknownKeysInCacheArtifactAndAgent) {
  ExpectError(Parse("name: p\ncaches:\n  deps:\n    kee: v1\nstages: []\n"), "p.yml:4: ",
              "unknown key \"kee\" in cache \"deps\" (expected one of: key, key_files)");
  ExpectError(Parse(std::string(kMinimal) + "    artifacts:\n      - {path: /x, optionl: true}\n"),
              "p.yml:7: ",
              "unknown key \"optionl\" in an artifact in stage \"test\" (expected one of: path, "
              "optional)");
  ExpectError(Parse(std::string(kMinimal) + "    agent:\n      label: [linux]\n"), "p.yml:7: ",
              "unknown key \"label\" in \"agent\" of stage \"test\" (expected one of: labels)");
}

TEST(PipelineParser, RejectsMissingRequiredStageKeysAtTheStageLine) {
  ExpectError(Parse("name: p\nstages:\n  - image: alpine\n    run: make\n"), "p.yml:3: ",
              "missing required key \"name\" in stage #1");
  ExpectError(Parse(std::string(kMinimal) + "  - name: lint\n    run: make lint\n"), "p.yml:6: ",
              "missing required key \"image\" in stage \"lint\"");
  ExpectError(Parse(std::string(kMinimal) + "  - name: lint\n    image: alpine\n"), "p.yml:6: ",
              "missing required key \"run\" in stage \"lint\"");
}

TEST(PipelineParser, RejectsMissingPipelineNameAndStages) {
  ExpectError(Parse("\n\nstages:\n  - {name: a, image: alpine, run: x}\n"), "p.yml:3: ",
              "missing required key \"name\" at top level");
  ExpectError(Parse("name: p\n"), "p.yml:1: ", "missing required key \"stages\"");
  ExpectError(Parse("name: p\nstages: []\n"), "p.yml:2: ", "\"stages\" is empty");
  ExpectError(Parse(""), "p.yml:1: ", "the pipeline is empty");
  ExpectError(Parse("- a\n- b\n"), "p.yml:1: ", "must be a map");
}

TEST(PipelineParser, RejectsBadNames) {
  ExpectError(Parse("name: -p\nstages: []\n"), "p.yml:1: ", "bad pipeline name \"-p\"");
  ExpectError(Parse("name: p\nstages:\n  - {name: a.b, image: alpine, run: x}\n"), "p.yml:3: ",
              "bad stage name \"a.b\"");
  ExpectError(Parse(std::string(kMinimal) + "    caches: {Build: /b}\n"), "p.yml:6: ",
              "bad cache name \"Build\"");
  ExpectError(Parse(std::string(kMinimal) + "    env: {1X: y}\n"), "p.yml:6: ",
              "bad environment variable name \"1X\"");
}

TEST(PipelineParser, RejectsDuplicateStageNamesAtTheSecondStage) {
  ExpectError(Parse(std::string(kMinimal) + "  - name: test\n    image: alpine\n    run: x\n"),
              "p.yml:6: ", "duplicate stage name \"test\" (first defined at line 3)");
}

TEST(PipelineParser, RejectsDuplicateKeys) {
  ExpectError(Parse(std::string(kMinimal) + "    image: debian\n"), "p.yml:6: ",
              "duplicate key \"image\" in stage \"test\"");
}

TEST(PipelineParser, RejectsCycleNamingItsPath) {
  std::string path = kPipelines + "/cycle.yml";
  ExpectError(ParsePipelineFile(path).status(), path + ":6: ",
              "stage \"a\" is part of a cycle in needs: a -> b -> a");
}

TEST(PipelineParser, RejectsUnknownAndSelfNeeds) {
  ExpectError(Parse(std::string(kMinimal) + "    needs: [buidl]\n"), "p.yml:3: ",
              "stage \"test\" needs unknown stage \"buidl\"");
  ExpectError(Parse(std::string(kMinimal) + "    needs: test\n"), "p.yml:3: ",
              "stage \"test\" needs itself");
}

TEST(PipelineParser, RejectsDurationWithoutUnitAtTimeoutLine) {
  ExpectError(Parse(std::string(kMinimal) + "    timeout: 10\n"), "p.yml:6: ",
              "bad duration \"10\": use a unit, e.g. 90s, 10m, 1h30m");
  ExpectError(Parse(std::string(kMinimal) + "    timeout: -5m\n"), "p.yml:6: ",
              "must be positive");
}

TEST(PipelineParser, RejectsUnknownNetwork) {
  ExpectError(Parse(std::string(kMinimal) + "    network: host\n"), "p.yml:6: ",
              "bad network \"host\" in stage \"test\": use \"none\" or \"bridge\"");
}

TEST(PipelineParser, ReportsYamlSyntaxErrorWithFileAndLine) {
  std::string path = kPipelines + "/bad_syntax.yml";
  ExpectError(ParsePipelineFile(path).status(), path + ":6: ", "invalid YAML: ");
  ExpectError(Parse("name: p\nstages:\n  - name: a\n   image: b\n"), "p.yml:4: ",
              "invalid YAML: ");
}

TEST(PipelineParser, RejectsWrongTypesAtTheirLines) {
  ExpectError(Parse(std::string(kMinimal) + "    needs: {a: 1}\n"), "p.yml:6: ",
              "\"needs\" in stage \"test\" must be a list of strings (or one string), got a map");
  ExpectError(Parse(std::string(kMinimal) + "    retries: many\n"), "p.yml:6: ",
              "\"retries\" in stage \"test\" must be a whole number from 0 to 10, got \"many\"");
  ExpectError(Parse(std::string(kMinimal) + "    retries: 11\n"), "p.yml:6: ", "from 0 to 10");
  ExpectError(Parse(std::string(kMinimal) + "    needs:\n      - [a]\n"), "p.yml:7: ",
              "an item is a list");
  ExpectError(Parse(std::string(kMinimal) + "    env: [A=1]\n"), "p.yml:6: ",
              "\"env\" in stage \"test\" must be a map, got a list");
  ExpectError(Parse(std::string(kMinimal) + "    env:\n      A: {b: 1}\n"), "p.yml:7: ",
              "environment variable \"A\" in stage \"test\" must be a string, number or boolean");
  ExpectError(Parse(std::string(kMinimal) + "    shell: []\n"), "p.yml:6: ",
              "\"shell\" in stage \"test\" is empty");
  ExpectError(Parse(std::string(kMinimal) + "    shell: bash\n"), "p.yml:6: ",
              "must be a list of strings");
  ExpectError(Parse(std::string(kMinimal) + "    artifacts: /x\n"), "p.yml:6: ",
              "\"artifacts\" in stage \"test\" must be a list");
  ExpectError(Parse(std::string(kMinimal) + "    artifacts: [x/*.whl]\n"), "p.yml:6: ",
              "must be an absolute path");
  ExpectError(Parse(std::string(kMinimal) + "    caches: {build: build}\n"), "p.yml:6: ",
              "must be mounted at an absolute path");
  ExpectError(Parse(std::string(kMinimal) + "    workdir: app\n"), "p.yml:6: ",
              "\"workdir\" in stage \"test\" must be an absolute path");
  ExpectError(Parse("name: p\nstages:\n  - name: a\n    image:\n    run: x\n"), "p.yml:4: ",
              "\"image\" in stage \"a\" must be a string, got nothing");
  ExpectError(Parse("name: p\nstages:\n  - just-a-string\n"), "p.yml:3: ",
              "stage #1 must be a map");
  ExpectError(Parse("name: [p]\nstages: []\n"), "p.yml:1: ", "\"name\" at top level must be a string");
}

TEST(PipelineParser, RejectsMissingKeyFileAtItsLine) {
  std::string path = kPipelines + "/missing_key_file.yml";
  ExpectError(ParsePipelineFile(path).status(), path + ":6: ",
              "cannot read key file \"no-such-file.txt\" in cache \"deps\"");
}

TEST(PipelineParser, RejectsMissingSourceDirectory) {
  ExpectError(Parse("name: p\nsource: nowhere\nstages: []\n"), "p.yml:2: ",
              "source \"nowhere\" is not a directory");
  ExpectError(Parse("name: p\nsource: valid.yml\nstages: []\n"), "p.yml:2: ", "is not a directory");
}

TEST(PipelineParser, CacheKeyFromKeyFilesChangesWhenAFileChanges) {
  TempDir dir;
  WriteFile(dir.path() + "/req.txt", "flask==3.0.0\n");
  const std::string yaml = R"(name: p
caches:
  deps: {key_files: [req.txt]}
  named: {key: v2, key_files: [req.txt]}
  plain: {key: v1}
stages:
  - name: test
    image: alpine
    run: make
)";
  absl::StatusOr<PipelineFile> before = ParsePipeline(yaml, "p.yml", dir.path());
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->pipeline.caches_size(), 3);
  EXPECT_EQ(before->pipeline.caches(0).key(),
            "deps-" + KeyFilesHash({{"req.txt", "flask==3.0.0\n"}}));
  EXPECT_EQ(before->pipeline.caches(1).key(),
            "v2-" + KeyFilesHash({{"req.txt", "flask==3.0.0\n"}}));
  EXPECT_EQ(before->pipeline.caches(2).key(), "v1");

  WriteFile(dir.path() + "/req.txt", "flask==3.0.1\n");
  absl::StatusOr<PipelineFile> after = ParsePipeline(yaml, "p.yml", dir.path());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(after->pipeline.caches(0).key(), before->pipeline.caches(0).key());
  EXPECT_EQ(after->pipeline.caches(2).key(), "v1");
}

TEST(PipelineParser, ListsUndeclaredStageCachesOnceInFirstUseOrder) {
  absl::StatusOr<PipelineFile> parsed = ParsePipeline(R"(name: p
caches:
  declared: {key: k}
stages:
  - {name: a, image: alpine, run: x, caches: {zeta: /z, declared: /d}}
  - {name: b, image: alpine, run: x, caches: {alpha: /a, zeta: /z}}
)", "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  std::vector<std::pair<std::string, std::string>> caches;
  for (const v1::CacheSpec& c : parsed->pipeline.caches()) caches.emplace_back(c.name(), c.key());
  EXPECT_THAT(caches, ::testing::ElementsAre(std::pair<std::string, std::string>("declared", "k"),
                                             std::pair<std::string, std::string>("zeta", ""),
                                             std::pair<std::string, std::string>("alpha", "")));
}

TEST(PipelineParser, NeverThrowsOnMalformedInput) {
  for (const char* yaml : {"[", "{a: [}", "\t- x", "*undefined", "a: &x [*x]", "? [a]\n: b\n",
                           "name: p\nstages: {a: 1}\n", "name: p\nstages:\n  - {? [x] : y}\n",
                           "\xff\xfe", "--- !!binary x\n", "name: p\nstages:\n  - name: a\n    "
                           "image: i\n    run: r\n    needs: [[[]]]\n"}) {
    absl::StatusOr<PipelineFile> parsed = ParsePipeline(yaml, "p.yml", kPipelines);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_THAT(std::string(parsed.status().message()), StartsWith("p.yml:")) << yaml;
  }
}

TEST(PipelineParser, ReportsUnreadablePipelineFileByPath) {
  absl::Status status = ParsePipelineFile(kPipelines + "/does-not-exist.yml").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("does-not-exist.yml"));
  status = ParsePipelineFile(kPipelines + "/src").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("/src"));
}

TEST(ParseDurationMs, AcceptsDurationsWithUnits) {
  EXPECT_EQ(*ParseDurationMs("90s"), 90'000);
  EXPECT_EQ(*ParseDurationMs("10m"), 600'000);
  EXPECT_EQ(*ParseDurationMs("1h30m"), 5'400'000);
  EXPECT_EQ(*ParseDurationMs("500ms"), 500);
}

TEST(ParseDurationMs, RejectsBareNumbersWithAHint) {
  absl::StatusOr<int64_t> ms = ParseDurationMs("10");
  EXPECT_EQ(ms.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ms.status().message(), "bad duration \"10\": use a unit, e.g. 90s, 10m, 1h30m");
}

TEST(ParseDurationMs, RejectsZeroNegativeAndGarbage) {
  for (const char* text : {"0", "0s", "-1m", "", "soon", "inf", "10 m", "1us"}) {
    absl::StatusOr<int64_t> ms = ParseDurationMs(text);
    EXPECT_EQ(ms.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(ms.status().message()), StartsWith("bad duration \"")) << text;
  }
}

}  // namespace
}  // namespace dockyard

namespace dockyard {
namespace {

TEST(PipelineParser, LimitsAndReportsAreParsed) {
  auto parsed = ParsePipeline(std::string(kMinimal) +
                                  "    limits: {memory: 512M, pids: 64, cpus: 1.5}\n"
                                  "    reports: {junit: [/reports/*.xml, /out/junit.xml]}\n",
                              "p.yml", kPipelines);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::Stage& stage = parsed->pipeline.stages(0);
  EXPECT_EQ(stage.limits().memory_bytes(), 512 << 20);
  EXPECT_EQ(stage.limits().pids(), 64);
  EXPECT_EQ(stage.limits().milli_cpus(), 1500);
  ASSERT_EQ(stage.junit_reports_size(), 2);
  EXPECT_EQ(stage.junit_reports(1), "/out/junit.xml");
}

TEST(PipelineParser, BadLimitsAndReportsNameTheLine) {
  ExpectError(Parse(std::string(kMinimal) + "    limits: {memory: lots}\n"), "p.yml:6: ", "\"lots\" is not a size");
  ExpectError(Parse(std::string(kMinimal) + "    limits: {pids: 0}\n"), "p.yml:6: ", "at least 1");
  ExpectError(Parse(std::string(kMinimal) + "    limits: {cpus: many}\n"), "p.yml:6: ", "not a CPU count");
  ExpectError(Parse(std::string(kMinimal) + "    limits: {disk: 1G}\n"), "p.yml:6: ", "disk");
  ExpectError(Parse(std::string(kMinimal) + "    reports: {junit: reports/x.xml}\n"), "p.yml:6: ",
              "must be absolute paths");
  ExpectError(Parse(std::string(kMinimal) + "    reports: {coverage: /c.xml}\n"), "p.yml:6: ", "coverage");
}

}  // namespace
}  // namespace dockyard

namespace dockyard {
namespace {

TEST(PipelineParser, HostileFilesGetTheParsersOwnReason) {
  // Nested far too deep: yaml-cpp stops at its depth guard; we say why.
  ExpectError(Parse("name: x\nstages: " + std::string(5000, '[') + std::string(5000, ']') + "\n"), "p.yml:2: ",
              "levels deep");
  // Too many stages.
  std::string many = "name: x\nstages:\n";
  for (int i = 0; i < 1001; ++i) many += "  - {name: s" + std::to_string(i) + ", image: x, run: y}\n";
  ExpectError(Parse(many), "p.yml:2: ", "1001 stages; a pipeline may have at most 1000 (--max_stages)");
  // Both are settings.
  EXPECT_TRUE(ParsePipeline(many, "p.yml", kPipelines, ParseLimits{.max_stages = 2000}).ok());
  EXPECT_FALSE(ParsePipeline(kMinimal, "p.yml", kPipelines, ParseLimits{.max_file_bytes = 10}).ok());
  // A billion laughs where a value is expected stays one small error.
  std::string laughs = "name: x\nstages:\n  - name: s\n    image: x\n    run: y\n    env:\n      A0: &a0 [lol, lol]\n";
  for (int i = 1; i < 30; ++i) {
    laughs += "      A" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + ", *a" +
              std::to_string(i - 1) + "]\n";
  }
  ExpectError(Parse(laughs), "p.yml:7: ", "a list");
  // Not UTF-8, and too big.
  ExpectError(Parse("name: caf\xe9\nstages: []\n"), "p.yml:1: ", "byte 0xe9 at column 10 is not UTF-8 text");
  EXPECT_THAT(std::string(ParsePipeline(std::string(ParseLimits{}.max_file_bytes + 1, '#'), "p.yml", kPipelines)
                              .status()
                              .message()),
              HasSubstr("a pipeline file may hold at most"));
}

}  // namespace
}  // namespace dockyard
