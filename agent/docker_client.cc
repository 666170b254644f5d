#include "agent/docker_client.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace dockyard {

absl::Status DockerClient::GetArchive(const std::string& id, const std::string& path, const std::string& out_tar_path,
                                      int64_t max_bytes) {
  std::FILE* out = std::fopen(out_tar_path.c_str(), "wb");
  auto file_error = [&](const char* what) {
    return absl::InternalError(absl::StrCat("cannot ", what, " ", out_tar_path, ": ", std::strerror(errno)));
  };
  if (out == nullptr) return file_error("create");
  absl::Status result = StreamArchive(id, path, max_bytes, [&](std::string_view bytes) -> absl::Status {
    if (std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size()) return file_error("write");
    return absl::OkStatus();
  });
  if (std::fclose(out) != 0 && result.ok()) result = file_error("close");
  // A half-written tar must not pass for a result.
  if (!result.ok()) std::remove(out_tar_path.c_str());
  return result;
}

}  // namespace dockyard
