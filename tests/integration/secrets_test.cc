// Pipeline secrets with real processes and the real engine: set by an admin from
// stdin, handed to the stage as environment variables, and masked everywhere a
// stage's output lands — whole, split across writes and log chunks, line by line,
// base64-encoded, and after the agent re-adopts the container.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kApiKey[] = "dyk-9f3c1a77-Secret-Value-58e2";
constexpr char kPemLine1[] = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX";
constexpr char kPemLine2[] = "hTv7bQ2sZpX1cUe9Rk0yWd3LmNaH8gJfOiT";

// Every file below `dir`, concatenated (binary files too: SQLite, spools, logs).
std::string EverythingUnder(const std::string& dir) {
  std::string all;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) all += ReadFile(entry.path().string());
  }
  return all;
}

// What must never appear: the values, each line of the multi-line one, and the
// parts of their base64 encodings that do not depend on the bytes around them.
std::vector<std::string> Forbidden() {
  std::vector<std::string> out = {kApiKey, kPemLine1, kPemLine2};
  for (const std::string prefix : {"", "u", "us"}) {
    const std::string encoded = absl::Base64Escape(prefix + kApiKey);
    out.push_back(encoded.substr(4, encoded.size() - 8));
  }
  return out;
}

void ExpectNoSecret(const std::string& where, const std::string& text) {
  for (const std::string& secret : Forbidden()) {
    const size_t at = text.find(secret);
    EXPECT_EQ(at, std::string::npos) << "\"" << secret << "\" found in " << where << ": ..."
                                     << text.substr(at < 80 ? 0 : at - 80, 200) << "...";
  }
}

class Secrets : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.StartController({"--heartbeat_interval=300ms", "--lease_timeout=15s"});
  }

  // `dockyard secrets set NAME` with `value` on stdin, as `who` (a token file).
  CliResult SetSecret(const std::string& name, const std::string& value, const std::string& who = "") {
    const std::string input = cluster_.WriteFile("value-" + name, value);
    fs::permissions(input, fs::perms::owner_read | fs::perms::owner_write);
    CliResult r = cluster_.CliWithToken(who.empty() ? cluster_.admin_token_file() : who, {"secrets", "set", name},
                                        absl::Minutes(1), input);
    fs::remove(input);
    return r;
  }

  std::string Agent(const std::string& base) { return UniqueName(base); }

  Cluster cluster_;
};

TEST_F(Secrets, NeverAppearInLogsSpoolStateOrEitherDaemonsLog) {
  ASSERT_EQ(SetSecret("API_KEY", std::string(kApiKey) + "\n").exit_code, 0);
  const CliResult pem = SetSecret("PEM", absl::StrCat("-----BEGIN KEY-----\n", kPemLine1, "\n", kPemLine2,
                                                      "\n-----END KEY-----\n"));
  ASSERT_EQ(pem.exit_code, 0) << pem.err;
  EXPECT_THAT(pem.out, HasSubstr("secret PEM set"));
  const std::string agent = Agent("keeper");
  cluster_.StartAgent({.name = agent, .labels = {"linux"}});
  cluster_.WaitForAgents(1);

  // The halves are written apart in time; the long line puts the value across the
  // pump's 64 KiB line cut; base64 at two alignments; stderr too.
  const std::string file = cluster_.WriteFile("secrets.yml", R"(name: secrets
stages:
  - name: leak
    image: dockyard/busybox
    secrets: [API_KEY, PEM]
    run: |
      echo "whole: $API_KEY"
      printf 'split: %s' "${API_KEY%????????????????}"; sleep 0.3; printf '%s\n' "${API_KEY#??????????????}"
      head -c 65530 /dev/zero | tr '\0' x; echo "$API_KEY"
      echo "$PEM"
      echo "$PEM" | sed 's/^/  > /'
      printf %s "$API_KEY" | base64
      printf 'us%s' "$API_KEY" | base64
      echo "to stderr: $API_KEY" >&2
      env | grep API_KEY
      printf %s "$API_KEY" | sha256sum
      echo printed
      sleep 3
)");
  auto run = cluster_.SpawnCli({"run", file});
  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"logs", "1", "leak"}).out.find("printed") != std::string::npos; },
                         absl::Seconds(60)))
      << run->Log();
  // While the stage sleeps its spool is still on the agent's disk.
  const std::string spool = EverythingUnder(cluster_.dir() + "/agent-" + agent + "/spool");
  EXPECT_THAT(spool, HasSubstr("whole: ***"));
  ExpectNoSecret("the agent's spool", spool);
  const std::string followed = Shell(absl::StrCat("cd ", cluster_.dir(), " && timeout 30 ", Bin("cli/dockyard"),
                                                  " --controller=", cluster_.address(), " --ca_file=",
                                                  cluster_.ca_file(), " --token_file=", cluster_.admin_token_file(),
                                                  " logs 1 leak --follow 2>&1"));
  ASSERT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();

  const std::string log = cluster_.Cli({"logs", "1", "leak"}).out;
  // Readable on failure: the 64 KiB line of x's shortened.
  std::string shown = log;
  if (size_t x = shown.find("xxxxxxxx"); x != std::string::npos) {
    shown.replace(x, shown.find_first_not_of('x', x) - x, "x...x");
  }
  EXPECT_THAT(shown, HasSubstr("whole: ***\n"));
  EXPECT_THAT(shown, HasSubstr("split: ***\n"));
  // The value after the long line, the multi-line one whole, then each of its lines
  // (its BEGIN and END lines too: every line of a secret is one).
  // (stderr is a stream of its own: its line may land anywhere between these.)
  EXPECT_THAT(shown, HasSubstr("x...x***\n***\n"));
  EXPECT_THAT(shown, HasSubstr("  > ***\n  > ***\n  > ***\n  > ***\n"));
  EXPECT_THAT(shown, HasSubstr("to stderr: ***"));
  EXPECT_THAT(shown, HasSubstr("API_KEY=***"));
  EXPECT_THAT(shown, HasSubstr("secrets API_KEY, PEM in the environment"));
  // The stage did get the real value: its digest, not the mask's.
  std::string digest = Shell(absl::StrCat("printf %s '", kApiKey, "' | sha256sum | cut -c1-64"));
  digest.erase(digest.find_last_not_of("\n") + 1);
  EXPECT_THAT(shown, HasSubstr(digest));

  ExpectNoSecret("the stored log", log);
  ExpectNoSecret("logs --follow", followed);
  ExpectNoSecret("dockyard run's output", run->Log());
  ExpectNoSecret("status", cluster_.Cli({"status", "1", "--long"}).out + cluster_.Cli({"status", "1", "--json"}).out);
  ExpectNoSecret("the controller's data dir (state.db, its WAL, logs, blobs)",
                 EverythingUnder(cluster_.dir() + "/controller"));
  ExpectNoSecret("the agent's work dir", EverythingUnder(cluster_.dir() + "/agent-" + agent));
  ExpectNoSecret("the controller's log", cluster_.controller().Log());
  ExpectNoSecret("the agent's log", cluster_.agent(agent).Log());
  const CliResult list = cluster_.Cli({"secrets", "list"});
  EXPECT_THAT(list.out, HasSubstr("API_KEY"));
  ExpectNoSecret("secrets list", list.out);
  EXPECT_THAT(cluster_.controller().Log(), HasSubstr("audit: SetSecret API_KEY by token admin (admin)"));
}

TEST_F(Secrets, AReadoptedStageStillHasItsSecretsMasked) {
  ASSERT_EQ(SetSecret("API_KEY", kApiKey).exit_code, 0);
  const std::string agent = Agent("phoenix");
  cluster_.StartAgent({.name = agent, .labels = {"linux"}});
  cluster_.WaitForAgents(1);
  const std::string file = cluster_.WriteFile("readopt.yml", R"(name: readopt
stages:
  - name: count
    image: dockyard/busybox
    secrets: [API_KEY]
    run: |
      for i in $(seq 1 40); do echo "line $i $API_KEY"; sleep 0.1; done
      echo done
)");
  auto run = cluster_.SpawnCli({"run", file});
  ASSERT_TRUE(Eventually([&] { return cluster_.Cli({"logs", "1", "count"}).out.find("line 5") != std::string::npos; },
                         absl::Seconds(30)));
  cluster_.agent(agent).Signal(SIGKILL);
  cluster_.agent(agent).Wait();
  cluster_.StartAgent({.name = agent, .labels = {"linux"}});
  ASSERT_EQ(run->Wait(absl::Seconds(60)), 0) << run->Log();
  const std::string log = cluster_.Cli({"logs", "1", "count"}).out;
  EXPECT_THAT(log, HasSubstr("took this container over again"));
  EXPECT_THAT(log, HasSubstr("line 40 ***\n"));
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) lines += absl::StartsWith(line, "line ") ? 1 : 0;
  EXPECT_EQ(lines, 40) << "every line once, re-adoption kept the count of container bytes right\n" << log;
  ExpectNoSecret("the log after re-adoption", log);
  ExpectNoSecret("the agent's work dir", EverythingUnder(cluster_.dir() + "/agent-" + agent));
}

TEST_F(Secrets, OnlyAdminsSetThemShortValuesAndUnknownNamesAreRefused) {
  const std::string submit = cluster_.CreateToken("submit", "ci");
  const CliResult denied = SetSecret("API_KEY", kApiKey, submit);
  EXPECT_EQ(denied.exit_code, 4) << denied.err;
  const CliResult tiny = SetSecret("TINY", "abc\n");
  EXPECT_NE(tiny.exit_code, 0);
  EXPECT_THAT(tiny.err, HasSubstr("at least 6"));
  EXPECT_THAT(tiny.err, Not(HasSubstr("abc")));

  const std::string file = cluster_.WriteFile("unknown.yml", R"(name: unknown
stages:
  - name: s
    image: dockyard/busybox
    secrets: [NOT_SET]
    run: echo hi
)");
  const CliResult refused = cluster_.CliWithToken(submit, {"run", file});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("secret NOT_SET is not set"));
  EXPECT_THAT(cluster_.Cli({"status", "1"}).err, HasSubstr("no run"));

  ASSERT_EQ(SetSecret("GONE", kApiKey).exit_code, 0);
  ASSERT_EQ(cluster_.Cli({"secrets", "delete", "GONE"}).exit_code, 0);
  EXPECT_THAT(cluster_.Cli({"secrets", "list"}).out, Not(HasSubstr("GONE")));
}

}  // namespace
}  // namespace dockyard::testing
