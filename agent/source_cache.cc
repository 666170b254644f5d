#include "agent/source_cache.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/sha256.h"

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
  const std::string tmp = absl::StrCat(path, ".", ::getpid(), ".tmp");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  v1::FetchSourceRequest request;
  request.set_digest(digest);
  auto reader = stub_->FetchSource(&context, request);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  Sha256 hash;
  int64_t size = 0;
  v1::BlobChunk chunk;
  while (reader->Read(&chunk)) {
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    hash.Update(chunk.data());
    size += static_cast<int64_t>(chunk.data().size());
  }
  out.close();
  grpc::Status status = reader->Finish();
  if (!status.ok() || !out) {
    std::filesystem::remove(tmp);
    if (!status.ok()) return FromGrpcStatus(status);
    return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (const std::string got = hash.HexDigest(); got != digest) {
    std::filesystem::remove(tmp);
    return absl::DataLossError(absl::StrCat("source ", digest, " arrived with sha256 ", got));
  }
  std::filesystem::rename(tmp, path);
  Logger("agent")->info("source={} fetched bytes={}", digest.substr(0, 12), size);
  return absl::OkStatus();
}

}  // namespace dockyard
