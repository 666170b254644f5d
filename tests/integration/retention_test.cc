// Retention end to end: real controller, agent and CLI. Finished runs past the age
// limit go with their logs and the blobs nothing else references; a blob another run
// still uses stays, a run in progress is never touched, and `dockyard gc --dry-run`
// says what would go without removing anything. Also in the scale-out suite, with the
// runs, logs and blobs in PostgreSQL and S3.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/support/cluster.h"
#include "tests/support/postgres_server.h"

namespace dockyard::testing {
namespace {

using ::testing::HasSubstr;

std::string RunIdOf(const CliResult& detached) { return std::string(absl::StripAsciiWhitespace(detached.out)); }

TEST(Retention, OldFinishedRunsGoWithTheirLogsAndOnlyTheBlobsNothingElseUses) {
  Cluster cluster;
  // Manual collections only (the periodic one waits an hour); blobs need no age.
  cluster.StartController({"--retain_runs=3s", "--blob_grace=0s", "--gc_interval=1h"});
  cluster.StartAgent({.name = UniqueName("retention"), .labels = {"linux"}, .slots = 2});
  cluster.WaitForAgents(1);
  cluster.WriteFile("src/app.txt", "the same source for both runs\n");
  cluster.WriteFile("slow.yml", "name: slow\nsource: src\nstages:\n  - name: wait\n    image: dockyard/busybox\n"
                                "    run: sleep 120\n");
  // Both publish the same file, and the old run one of its own.
  cluster.WriteFile("old.yml", "name: old\nsource: src\nstages:\n  - name: build\n    image: dockyard/busybox\n"
                               "    run: |\n      mkdir /out && echo shared > /out/shared.txt\n"
                               "      echo only-old-run-$RANDOM$RANDOM > /out/own.txt\n      echo old-log-line\n"
                               "    artifacts: [/out/*.txt]\n");
  cluster.WriteFile("new.yml", "name: new\nsource: src\nstages:\n  - name: build\n    image: dockyard/busybox\n"
                               "    run: mkdir /out && echo shared > /out/shared.txt\n"
                               "    artifacts: [/out/*.txt]\n");

  const CliResult slow = cluster.Cli({"run", "slow.yml", "--detach"});
  ASSERT_EQ(slow.exit_code, 0) << slow.out << slow.err;
  const std::string slow_id = RunIdOf(slow);
  cluster.WaitForStatus(slow_id, "running");
  const CliResult old = cluster.Cli({"run", "old.yml", "--no-artifacts"});
  ASSERT_EQ(old.exit_code, 0) << old.out << old.err;
  const std::string old_id = std::to_string(std::stoi(slow_id) + 1);
  ASSERT_THAT(cluster.Cli({"logs", old_id, "build"}).out, HasSubstr("old-log-line"));
  std::this_thread::sleep_for(std::chrono::seconds(4));  // past --retain_runs
  const CliResult fresh = cluster.Cli({"run", "new.yml", "--no-artifacts"});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.out << fresh.err;
  const std::string new_id = std::to_string(std::stoi(old_id) + 1);

  // The dry run names the old run and its own blobs: its artifact (and, with the logs
  // in PostgreSQL, its archived log), and removes nothing.
  const std::string own_blobs = PostgresForTests().empty() ? "1 blobs" : "2 blobs";
  const CliResult dry = cluster.Cli({"gc", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("would remove 1 finished runs: " + old_id + "\n"));
  EXPECT_THAT(dry.out, HasSubstr("would remove " + own_blobs));
  EXPECT_EQ(cluster.Cli({"status", old_id}).exit_code, 0);

  const CliResult gc = cluster.Cli({"gc"});
  ASSERT_EQ(gc.exit_code, 0) << gc.out << gc.err;
  EXPECT_THAT(gc.out, HasSubstr("removed 1 finished runs: " + old_id + "\n"));
  EXPECT_THAT(gc.out, HasSubstr("removed " + own_blobs));

  // The old run, its log and its own artifact are gone...
  const CliResult status = cluster.Cli({"status", old_id});
  EXPECT_NE(status.exit_code, 0);
  EXPECT_THAT(status.err, HasSubstr("no run " + old_id));
  EXPECT_NE(cluster.Cli({"logs", old_id, "build"}).exit_code, 0);
  // ...the newer run keeps the artifact and source they shared...
  const CliResult fetched = cluster.Cli({"artifacts", new_id, "--dest=fetched"});
  EXPECT_EQ(fetched.exit_code, 0) << fetched.out << fetched.err;
  EXPECT_EQ(Shell("cat " + cluster.dir() + "/fetched/shared.txt"), "shared\n");
  const CliResult again = cluster.Cli({"run", "new.yml", "--no-artifacts"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  // ...and the run in progress, older than the limit, is untouched.
  EXPECT_THAT(cluster.Cli({"status", slow_id}).out, HasSubstr("running"));
  const CliResult nothing = cluster.Cli({"gc", "--dry-run"});
  EXPECT_THAT(nothing.out, HasSubstr("would remove 0 blobs"));
  cluster.Cli({"cancel", slow_id});
}

}  // namespace
}  // namespace dockyard::testing
