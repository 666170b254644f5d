#include "agent/stage_spool.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string SpoolDir(const std::string& root, const v1::StageRef& ref) {
  return absl::StrCat(root, "/", ref.run_id(), ".", ref.stage(), ".", ref.attempt());
}

std::string SpoolLogPath(const std::string& dir) { return dir + "/log.spool"; }

absl::Status CreateSpool(const std::string& dir, const v1::StageAssignment& assignment) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
  return WriteFileAtomically(dir + "/assignment.pb", assignment.SerializeAsString());
}

absl::StatusOr<v1::StageAssignment> LoadSpoolAssignment(const std::string& dir) {
  auto bytes = ReadAll(dir + "/assignment.pb");
  v1::StageAssignment assignment;
  if (!bytes || !assignment.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat(dir, ": no readable assignment"));
  }
  return assignment;
}

absl::Status SaveSpoolStatus(const std::string& dir, const v1::StageStatus& status) {
  return WriteFileAtomically(dir + "/status.pb", status.SerializeAsString());
}

std::optional<v1::StageStatus> LoadSpoolStatus(const std::string& dir) {
  auto bytes = ReadAll(dir + "/status.pb");
  v1::StageStatus status;
  if (!bytes || !status.ParseFromString(*bytes)) return std::nullopt;
  return status;
}

std::vector<std::string> ListSpools(const std::string& root) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory()) dirs.push_back(entry.path().string());
  }
  return dirs;
}

void RemoveSpool(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace dockyard
