// The `needs` graph of a pipeline: validation (unknown names, duplicates, cycles)
// and a topological order. Used by the CLI before submitting and by the controller
// on every submitted pipeline (which it must not trust).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

// OK when stage names are unique and non-empty, every `needs` names another stage
// of the pipeline, and the needs contain no cycle. Errors are INVALID_ARGUMENT and,
// when the stage has a line, read `file:line: message`; a cycle names its path
// ("a -> b -> a").
absl::Status ValidateStageGraph(const v1::Pipeline& pipeline);

// Stage names so that every stage comes after all it needs; ties keep file order.
absl::StatusOr<std::vector<std::string>> TopologicalOrder(const v1::Pipeline& pipeline);

}  // namespace dockyard
