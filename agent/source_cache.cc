#include "agent/source_cache.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/blob_receiver.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dockyard {

SourceCache::SourceCache(std::string dir, v1::AgentService::StubInterface* stub)
    : dir_(std::move(dir)), stub_(stub) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
}

absl::StatusOr<std::string> SourceCache::Get(const std::string& digest) {
  if (!IsSha256Hex(digest)) return absl::InvalidArgumentError(absl::StrCat("bad source digest \"", digest, "\""));
  const std::string path = absl::StrCat(dir_, "/", digest, ".tar");
  absl::MutexLock lock(&fetch_mu_);
  if (std::filesystem::exists(path)) return path;
  if (absl::Status st = Fetch(digest, path); !st.ok()) return st;
  return path;
}

absl::Status SourceCache::Fetch(const std::string& digest, const std::string& path) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  v1::FetchSourceRequest request;
  request.set_digest(digest);
  auto reader = stub_->FetchSource(&context, request);
  int64_t size = 0;
  RETURN_IF_ERROR(ReceiveBlob(*reader, path, digest, /*size=*/-1, [&](int64_t bytes) { size = bytes; }));
  Logger("agent")->info("source={} fetched bytes={}", digest.substr(0, 12), size);
  return absl::OkStatus();
}

}  // namespace dockyard
