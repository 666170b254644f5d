// Incremental decoder for Docker's multiplexed log stream (non-TTY containers):
// frames of [stream:1][0:3][big-endian length:4][payload], split anywhere by HTTP.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "agent/docker_client.h"

namespace dockyard {

class DockerLogDecoder {
 public:
  explicit DockerLogDecoder(DockerClient::OutputSink sink);

  // Consumes bytes as they arrive; calls the sink for each frame payload (possibly in
  // parts). INTERNAL on a malformed header (unknown stream type or non-zero padding).
  absl::Status Feed(std::string_view bytes);
  // DATA_LOSS when the stream ended inside a frame.
  absl::Status Finish() const;

 private:
  DockerClient::OutputSink sink_;
  std::string header_;          // partial header bytes
  uint32_t remaining_ = 0;      // payload bytes left in the current frame
  OutputStream stream_ = OutputStream::kStdout;
};

}  // namespace dockyard
