// An attempt's files on the agent's disk, so a restarted agent can carry on where
// it stopped: <root>/<run>.<stage>.<attempt>/ holds the assignment, the log chunks
// (LogPump's spool) and, once the attempt is over, its final status.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dockyard/v1/agent.pb.h"

namespace dockyard {

std::string SpoolDir(const std::string& root, const v1::StageRef& ref);
std::string SpoolLogPath(const std::string& dir);
// Creates the directory and writes the assignment (atomically).
absl::Status CreateSpool(const std::string& dir, const v1::StageAssignment& assignment);
absl::StatusOr<v1::StageAssignment> LoadSpoolAssignment(const std::string& dir);
absl::Status SaveSpoolStatus(const std::string& dir, const v1::StageStatus& status);
std::optional<v1::StageStatus> LoadSpoolStatus(const std::string& dir);
// Every attempt directory below `root`.
std::vector<std::string> ListSpools(const std::string& root);
void RemoveSpool(const std::string& dir);

}  // namespace dockyard
