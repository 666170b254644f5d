// Sends a file as the data messages of a client-streaming upload (artifacts, cache
// parts): the caller writes the header message first, then this sends the rest.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace dockyard {

// Writes `request` (its header set) and then the file at `path` from `offset`, in
// `chunk_bytes` pieces of `request`'s `data`; closes the writing side and returns
// the call's status.
template <typename Request>
grpc::Status StreamFile(grpc::ClientWriterInterface<Request>& writer, Request& request, const std::string& path,
                        int64_t offset, size_t chunk_bytes) {
  bool open = writer.Write(request);
  std::ifstream in(path, std::ios::binary);
  in.seekg(offset);
  std::string buffer(chunk_bytes, '\0');
  while (open && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    request.set_data(buffer.data(), static_cast<size_t>(n));
    open = writer.Write(request);
  }
  writer.WritesDone();
  return writer.Finish();
}

}  // namespace dockyard
