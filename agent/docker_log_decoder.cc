#include "agent/docker_log_decoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace dockyard {
namespace {

constexpr size_t kHeaderSize = 8;

}  // namespace

DockerLogDecoder::DockerLogDecoder(DockerClient::OutputSink sink) : sink_(std::move(sink)) {}

absl::Status DockerLogDecoder::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    if (remaining_ > 0) {
      // Hand over partial payloads at once rather than buffering whole frames: a frame
      // can be up to 4 GiB and the sink wants output as soon as it exists.
      const size_t n = std::min<size_t>(remaining_, bytes.size());
      sink_(stream_, bytes.substr(0, n));
      remaining_ -= static_cast<uint32_t>(n);
      bytes.remove_prefix(n);
      continue;
    }

    const size_t need = kHeaderSize - header_.size();
    const size_t n = std::min(need, bytes.size());
    header_.append(bytes.data(), n);
    bytes.remove_prefix(n);
    if (header_.size() < kHeaderSize) break;

    const auto* h = reinterpret_cast<const unsigned char*>(header_.data());
    switch (h[0]) {
      case 0:  // stdin: only seen with AttachStdin; nothing else to route it to.
      case 1:
        stream_ = OutputStream::kStdout;
        break;
      case 2:
        stream_ = OutputStream::kStderr;
        break;
      default:
        return absl::InternalError(absl::StrCat(
            "docker log stream: unknown stream type ", static_cast<int>(h[0]),
            " in frame header (is the container running with a TTY?)"));
    }
    if (h[1] != 0 || h[2] != 0 || h[3] != 0) {
      return absl::InternalError("docker log stream: non-zero padding in frame header");
    }
    remaining_ = (static_cast<uint32_t>(h[4]) << 24) | (static_cast<uint32_t>(h[5]) << 16) |
                 (static_cast<uint32_t>(h[6]) << 8) | static_cast<uint32_t>(h[7]);
    header_.clear();
  }
  return absl::OkStatus();
}

absl::Status DockerLogDecoder::Finish() const {
  if (remaining_ > 0) {
    return absl::DataLossError(absl::StrCat("docker log stream ended ", remaining_,
                                            " bytes short of the end of a frame"));
  }
  if (!header_.empty()) {
    return absl::DataLossError(absl::StrCat("docker log stream ended inside a frame header (",
                                            header_.size(), " of 8 bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace dockyard
