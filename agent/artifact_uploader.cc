#include "agent/artifact_uploader.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "agent/file_stream.h"
#include "common/grpc_status.h"
#include "common/retrier.h"
#include "common/utf8.h"
#include "common/sha256.h"

namespace dockyard {
namespace {

constexpr size_t kChunkBytes = 512 * 1024;

}  // namespace

std::string GlobRoot(const std::string& pattern) {
  const size_t glob = pattern.find_first_of("*?[");
  const std::string fixed = glob == std::string::npos ? pattern : pattern.substr(0, glob);
  const size_t slash = fixed.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return fixed.substr(0, slash);
}

absl::StatusOr<std::vector<UploadedArtifact>> ArtifactUploader::UploadAll(
    const v1::StageRef& ref, const std::string& container,
    const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, const std::string& scratch_dir,
    bool reports) {
  auto uploaded = UploadFrom(ref, container, specs, scratch_dir, reports);
  std::error_code ec;
  std::filesystem::remove_all(scratch_dir, ec);  // whatever happened: nothing stays
  return uploaded;
}

absl::StatusOr<std::vector<UploadedArtifact>> ArtifactUploader::UploadFrom(
    const v1::StageRef& ref, const std::string& container,
    const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, const std::string& scratch_dir,
    bool reports) {
  std::vector<UploadedArtifact> uploaded;
  std::error_code ec;
  // Everything is extracted first: names are checked across all patterns before
  // anything is published.
  std::vector<ExtractedFile> all;
  for (int i = 0; i < specs.size(); ++i) {
    const v1::ArtifactSpec& spec = specs[i];
    const std::string dir = absl::StrCat(scratch_dir, "/", i);
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir + "/files", ec);
    const std::string root = GlobRoot(spec.pattern());
    const std::string tar = dir + "/archive.tar";
    std::vector<ExtractedFile> files;
    absl::Status got = docker_->GetArchive(container, root, tar, limits_.max_bytes);
    if (got.ok()) {
      auto extracted = ExtractMatching(tar, root, spec.pattern(), dir + "/files");
      if (!extracted.ok()) return extracted.status();
      files = *std::move(extracted);
    } else if (!absl::IsNotFound(got)) {
      return got;
    }
    if (files.empty() && !spec.optional()) {
      return absl::FailedPreconditionError(
          absl::StrCat("artifact pattern ", spec.pattern(), " matched no file (mark it optional if that is fine)"));
    }
    for (ExtractedFile& file : files) all.push_back(std::move(file));
  }
  if (limits_.max_files > 0 && static_cast<int>(all.size()) > limits_.max_files) {
    return absl::ResourceExhaustedError(absl::StrCat(all.size(), " files match the stage's ",
                                                     reports ? "test reports" : "artifacts", "; this agent publishes at most ",
                                                     limits_.max_files, " (--max_artifacts)"));
  }
  std::map<std::string, std::string> by_name;  // file name -> path in the container
  std::vector<ExtractedFile> unique;           // a file two patterns match goes once
  for (const ExtractedFile& file : all) {
    if (!IsValidUtf8(file.container_path)) {
      return absl::InvalidArgumentError(absl::StrCat("artifact ", SanitizeUtf8(file.container_path),
                                                     " has a name that is not UTF-8 text; rename it in the stage"));
    }
    const std::string name = std::filesystem::path(file.container_path).filename().string();
    auto [it, fresh] = by_name.emplace(name, file.container_path);
    if (fresh) unique.push_back(file);
    if (!fresh && it->second != file.container_path) {
      return absl::FailedPreconditionError(absl::StrCat("two ", reports ? "test reports" : "artifacts", " named ", name,
                                                        ": ", it->second, " and ", file.container_path,
                                                        " (a stage publishes each file name once)"));
    }
  }
  for (const ExtractedFile& file : unique) {
    auto done = Upload(ref, file, reports);
    if (!done.ok()) return done.status();
    uploaded.push_back(*std::move(done));
  }
  return uploaded;
}

absl::StatusOr<UploadedArtifact> ArtifactUploader::UploadServiceLog(const v1::StageRef& ref,
                                                                    const std::string& service,
                                                                    const std::string& local_path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(local_path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(local_path, ": ", ec.message()));
  ExtractedFile file;
  file.local_path = local_path;
  file.container_path = absl::StrCat("/services/", service, ".log");
  file.size = static_cast<int64_t>(size);
  return Upload(ref, file, /*report=*/false, service);
}

absl::StatusOr<UploadedArtifact> ArtifactUploader::Upload(const v1::StageRef& ref, const ExtractedFile& file,
                                                          bool report, const std::string& service) {
  auto sha256 = Sha256OfFile(file.local_path);
  if (!sha256.ok()) return sha256.status();
  v1::ArtifactHeader header;
  *header.mutable_stage() = ref;
  header.set_path(file.container_path);
  header.set_size(file.size);
  header.set_sha256(*sha256);
  header.set_report(report);
  header.set_service(service);

  // Each try first asks how much the controller already holds (an earlier try cut
  // off half way) and sends only the rest.
  RetryPolicy policy;
  policy.per_try_deadline = absl::Hours(1);
  policy.patience = absl::Minutes(10);
  absl::Status status = Retrier(policy).Run([&](grpc::ClientContext& context) -> grpc::Status {
    v1::UploadOffsetResponse held;
    {
      grpc::ClientContext query;
      query.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      grpc::Status st = stub_->ArtifactUploadOffset(&query, header, &held);
      if (!st.ok()) return st;
    }
    const int64_t offset = held.offset() <= file.size ? held.offset() : 0;
    v1::UploadArtifactResponse response;
    auto writer = stub_->UploadArtifact(&context, &response);
    v1::UploadArtifactRequest request;
    *request.mutable_header() = header;
    request.mutable_header()->set_offset(offset);
    return StreamFile(*writer, request, file.local_path, offset, kChunkBytes);
  });
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("uploading ", file.container_path, ": ", std::string(status.message())));
  }
  return UploadedArtifact{file.container_path, file.size, *sha256};
}

}  // namespace dockyard
