// Reads a pipeline YAML file into the wire form, rejecting bad input before anything
// runs with messages of the form `file:line: message`.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

struct PipelineFile {
  v1::Pipeline pipeline;   // source_digest is left empty: the CLI fills it after packing
  std::string source_dir;  // absolute; empty when the pipeline has no `source`
};

// Parses `yaml` as if read from `file_name`. Relative paths (source, cache key files)
// resolve against `base_dir`.
// The largest pipeline file accepted: well under the 16 MiB every gRPC hop takes,
// since a stage's whole spec travels in one message.
inline constexpr size_t kMaxPipelineBytes = 4 << 20;
// The most stages a pipeline may have (the controller has its own --max_stages).
inline constexpr size_t kMaxStages = 1000;
// The largest `run:` script: the kernel takes at most 128 KiB in one argument.
inline constexpr size_t kMaxScriptBytes = (128 << 10) - 1;

absl::StatusOr<PipelineFile> ParsePipeline(std::string_view yaml, const std::string& file_name,
                                           const std::string& base_dir);

// Reads and parses the file at `path`.
absl::StatusOr<PipelineFile> ParsePipelineFile(const std::string& path);

// "90s", "10m", "1h30m", "500ms" -> milliseconds. Zero and negative durations are errors.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

}  // namespace dockyard
