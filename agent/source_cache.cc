#include "agent/source_cache.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/blob_receiver.h"
#include "common/grpc_status.h"
#include "common/retrier.h"
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
  v1::FetchSourceRequest request;
  request.set_digest(digest);
  RetryPolicy policy;
  policy.per_try_deadline = absl::Minutes(30);
  ASSIGN_OR_RETURN(int64_t size, FetchBlob([&](grpc::ClientContext& c) { return stub_->FetchSource(&c, request); },
                                           path, digest, /*size=*/-1, policy));
  Logger("agent")->info("source={} fetched bytes={}", digest.substr(0, 12), size);
  return absl::OkStatus();
}

}  // namespace dockyard
