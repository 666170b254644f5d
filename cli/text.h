// How the CLI words things for people: state names and byte counts.
#pragma once

#include <cstdint>
#include <string>

#include "dockyard/v1/pipeline.pb.h"
#include "dockyard/v1/run.pb.h"

namespace dockyard {

// "running", "timed out", ...
std::string Word(v1::StageState state);
// "queued", "succeeded", ...
std::string Word(v1::RunState state);
// "512 B", "1.5 KiB", "3.2 MiB", "1.25 GiB"
std::string HumanBytes(int64_t bytes);

}  // namespace dockyard
