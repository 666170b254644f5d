#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/docker_log_decoder.h"
#include "common/pipeline_parser.h"
#include "common/tar_archive.h"
#include "controller/scheduler.h"

namespace dockyard::fuzz {
namespace {

namespace fs = std::filesystem;

// One scratch directory per process, emptied for every input.
const fs::path& Scratch() {
  static const fs::path* dir = [] {
    auto* p = new fs::path(fs::temp_directory_path() / ("dockyard-fuzz-" + std::to_string(::getpid())));
    return p;
  }();
  return *dir;
}

}  // namespace

void PipelineParserInput(std::string_view data) {
  (void)ParsePipeline(data, "fuzz.yml", "/nonexistent-dockyard-fuzz");
}

void DockerLogFramesInput(std::string_view data) {
  if (data.empty()) return;
  const size_t split = static_cast<unsigned char>(data[0]) % data.size();
  data.remove_prefix(1);
  size_t delivered = 0;
  DockerLogDecoder decoder([&](OutputStream, std::string_view payload) { delivered += payload.size(); });
  if (decoder.Feed(data.substr(0, std::min(split, data.size()))).ok()) {
    if (split < data.size()) (void)decoder.Feed(data.substr(split));
  }
  (void)decoder.Finish();
  if (delivered > data.size()) std::abort();  // more payload than input: a decoder bug
}

void TarExtractInput(std::string_view data) {
  const fs::path root = Scratch();
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root / "out", ec);
  const fs::path tar = root / "input.tar";
  std::ofstream(tar, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
  (void)ExtractMatching(tar.string(), "/out", "/out/*", (root / "out").string());
  // Nothing may land beside the destination: only input.tar and out/ may exist.
  for (const fs::directory_entry& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != "input.tar" && name != "out") std::abort();
  }
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(root / "out", ec)) {
    if (entry.is_symlink() || (!entry.is_regular_file() && !entry.is_directory())) std::abort();
  }
}

void StateRecordsInput(std::string_view data) {
  v1::RunRecord run;
  if (!run.ParseFromArray(data.data(), static_cast<int>(data.size()))) return;
  Scheduler scheduler(SchedulerOptions{});
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  (void)scheduler.Restore({run}, {}, now);
  (void)scheduler.Schedule(now);
  (void)scheduler.ExpireLeases(now + absl::Hours(1));
  for (const std::string& id : scheduler.TakeDirtyRuns()) (void)scheduler.ExportRun(id);
  (void)scheduler.GetRun(run.run().id());
}

}  // namespace dockyard::fuzz
