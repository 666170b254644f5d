// Streaming SHA-256 (OpenSSL) for content addresses: sources, artifacts, logs.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dockyard {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Lower-case hex digest. The hasher must not be updated afterwards.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);
// True for 64 lower-case hex characters; guards every digest used as a file name.
bool IsSha256Hex(std::string_view digest);

}  // namespace dockyard
