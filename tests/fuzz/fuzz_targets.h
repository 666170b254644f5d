// The code that reads untrusted bytes, one input at a time: for the libFuzzer
// binaries (scripts/fuzz.sh) and for the unit test that replays every input kept in
// tests/fuzz/regressions/<target>/. Each returns normally for any input; a crash,
// a sanitizer report or a write outside its scratch directory is a finding.
#pragma once

#include <string_view>

namespace dockyard::fuzz {

// A pipeline file (YAML) through the parser.
void PipelineParserInput(std::string_view data);
// Bytes from the Docker Engine's multiplexed log stream through the frame decoder,
// fed in two parts split where the first byte says.
void DockerLogFramesInput(std::string_view data);
// A tar archive (as a container's /out) through artifact matching, as the agent reads it.
void TarExtractInput(std::string_view data);
// A persisted run record through the scheduler's restore, scheduling and export.
void StateRecordsInput(std::string_view data);

}  // namespace dockyard::fuzz
