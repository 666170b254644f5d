#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/docker_log_decoder.h"
#include "common/pipeline_parser.h"
#include "common/tar_archive.h"
#include "common/tar_io.h"
#include "common/tar_matches.h"
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
  fs::create_directories(root, ec);
  const fs::path tar = root / "input.tar";
  std::ofstream(tar, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
  auto reader = tar_io::OpenReader(tar.string());
  if (!reader.ok()) return;
  // What the agent would publish: only files below /out, never a path that climbs out
  // of it, each with exactly the bytes its header announced.
  (void)VisitMatchingFiles(reader->get(), "input.tar", "/out", "/out/*", [](const MatchedFile& file, archive* a) {
    if (file.container_path.rfind("/out/", 0) != 0 || file.container_path.find("/../") != std::string::npos ||
        file.name.empty() || file.name.find('/') != std::string::npos) {
      std::abort();
    }
    if (!file.hardlink_to.empty()) return absl::OkStatus();
    int64_t read = 0;
    absl::Status st = ReadEntryData(a, "input.tar", file.size, [&](absl::string_view bytes) {
      read += static_cast<int64_t>(bytes.size());
      return absl::OkStatus();
    });
    if (st.ok() && read != file.size) std::abort();
    return st;
  });
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
