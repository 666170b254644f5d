#include "agent/artifact_uploader.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
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
    const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, const std::string& scratch_dir) {
  std::vector<UploadedArtifact> uploaded;
  std::error_code ec;
  for (int i = 0; i < specs.size(); ++i) {
    const v1::ArtifactSpec& spec = specs[i];
    const std::string dir = absl::StrCat(scratch_dir, "/", i);
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir + "/files", ec);
    const std::string root = GlobRoot(spec.pattern());
    const std::string tar = dir + "/archive.tar";
    std::vector<ExtractedFile> files;
    absl::Status got = docker_->GetArchive(container, root, tar);
    if (got.ok()) {
      auto extracted = ExtractMatching(tar, root, spec.pattern(), dir + "/files");
      if (!extracted.ok()) return extracted.status();
      files = *std::move(extracted);
    } else if (!absl::IsNotFound(got)) {
      return got;
    }
    if (files.empty() && !spec.optional()) {
      std::filesystem::remove_all(scratch_dir, ec);
      return absl::FailedPreconditionError(
          absl::StrCat("artifact pattern ", spec.pattern(), " matched no file (mark it optional if that is fine)"));
    }
    for (const ExtractedFile& file : files) {
      auto done = Upload(ref, file);
      if (!done.ok()) {
        std::filesystem::remove_all(scratch_dir, ec);
        return done.status();
      }
      uploaded.push_back(*std::move(done));
    }
  }
  std::filesystem::remove_all(scratch_dir, ec);
  return uploaded;
}

absl::StatusOr<UploadedArtifact> ArtifactUploader::Upload(const v1::StageRef& ref, const ExtractedFile& file) {
  auto sha256 = Sha256OfFile(file.local_path);
  if (!sha256.ok()) return sha256.status();

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  v1::UploadArtifactResponse response;
  auto writer = stub_->UploadArtifact(&context, &response);
  v1::UploadArtifactRequest request;
  v1::ArtifactHeader* header = request.mutable_header();
  *header->mutable_stage() = ref;
  header->set_path(file.container_path);
  header->set_size(file.size);
  header->set_sha256(*sha256);
  bool open = writer->Write(request);

  std::ifstream in(file.local_path, std::ios::binary);
  std::string buffer(kChunkBytes, '\0');
  while (open && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    request.set_data(buffer.data(), static_cast<size_t>(n));
    open = writer->Write(request);
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return absl::Status(FromGrpcStatus(status).code(),
                        absl::StrCat("uploading ", file.container_path, ": ", status.error_message()));
  }
  return UploadedArtifact{file.container_path, file.size, *sha256};
}

}  // namespace dockyard
