// Every input kept in tests/fuzz/regressions/<target>/ (seeds, and each crash the
// fuzzers found once, after its fix) goes through its target again: none may crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "tests/fuzz/fuzz_targets.h"

namespace dockyard::fuzz {
namespace {

namespace fs = std::filesystem;

void ReplayAll(const std::string& target, const std::function<void(std::string_view)>& input) {
  int replayed = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(fs::path(DOCKYARD_FUZZ_REGRESSIONS) / target)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    SCOPED_TRACE(entry.path().string());
    input(bytes.str());
    ++replayed;
  }
  EXPECT_GT(replayed, 0) << "no inputs kept for " << target;
}

TEST(FuzzRegressions, PipelineParserInputsNeverCrash) { ReplayAll("pipeline_parser", PipelineParserInput); }
TEST(FuzzRegressions, DockerLogFramesInputsNeverCrash) { ReplayAll("docker_log_frames", DockerLogFramesInput); }
TEST(FuzzRegressions, TarExtractInputsNeverCrashNorWriteOutside) { ReplayAll("tar_extract", TarExtractInput); }
TEST(FuzzRegressions, StateRecordsInputsNeverCrash) { ReplayAll("state_records", StateRecordsInput); }

}  // namespace
}  // namespace dockyard::fuzz
