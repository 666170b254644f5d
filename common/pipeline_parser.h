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

// The largest `run:` script: the kernel takes at most 128 KiB in one argument, so
// this is no setting.
inline constexpr size_t kMaxScriptBytes = (128 << 10) - 1;

// What a pipeline file may be (the CLI's --max_pipeline_bytes and --max_stages).
struct ParseLimits {
  // Well under the 16 MiB every gRPC hop takes: a stage's whole spec is one message.
  size_t max_file_bytes = 4 << 20;
  // The controller has its own --max_stages for what any client submits.
  size_t max_stages = 1000;
};

// Parses `yaml` as if read from `file_name`. Relative paths (source, cache key files)
// resolve against `base_dir`.
absl::StatusOr<PipelineFile> ParsePipeline(std::string_view yaml, const std::string& file_name,
                                           const std::string& base_dir, const ParseLimits& limits = {});

// Reads and parses the file at `path`.
absl::StatusOr<PipelineFile> ParsePipelineFile(const std::string& path, const ParseLimits& limits = {});

// "90s", "10m", "1h30m", "500ms" -> milliseconds. Zero and negative durations are errors.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

}  // namespace dockyard
