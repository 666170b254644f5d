#include "agent/artifact_uploader.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "agent/container_files.h"
#include "agent/file_stream.h"
#include "common/grpc_status.h"
#include "common/retrier.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/utf8.h"

namespace dockyard {
namespace {

// Data messages are this big: large enough for throughput, small enough that a
// window of them stays in flight without holding much memory.
constexpr size_t kChunkBytes = 1 << 20;

using Send = std::function<absl::Status(const v1::UploadArtifactRequest&)>;

// Sends the current tar entry's data in kChunkBytes messages, hashing as it goes, then
// the `end` with the digest, which it returns.
absl::StatusOr<std::string> SendEntryData(archive* data, const std::string& what, int64_t size, const Send& send) {
  Sha256 hash;
  std::string chunk;
  chunk.reserve(kChunkBytes);
  auto flush = [&]() -> absl::Status {
    v1::UploadArtifactRequest message;
    message.set_data(std::move(chunk));
    chunk.clear();
    chunk.reserve(kChunkBytes);
    return send(message);
  };
  RETURN_IF_ERROR(ReadEntryData(data, what, size, [&](absl::string_view bytes) -> absl::Status {
    hash.Update(std::string_view(bytes.data(), bytes.size()));
    chunk.append(bytes.data(), bytes.size());
    return chunk.size() >= kChunkBytes ? flush() : absl::OkStatus();
  }));
  if (!chunk.empty()) RETURN_IF_ERROR(flush());
  v1::UploadArtifactRequest end;
  end.mutable_end()->set_sha256(hash.HexDigest());
  RETURN_IF_ERROR(send(end));
  return end.end().sha256();
}

}  // namespace

absl::StatusOr<std::vector<UploadedArtifact>> ArtifactUploader::UploadAll(
    const v1::StageRef& ref, const std::string& container,
    const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs, bool reports) {
  std::vector<UploadedArtifact> uploaded;
  absl::Status failure;
  absl::Status status = Retrier(TransferPolicy(absl::Hours(1))).Run([&](grpc::ClientContext& context) {
    failure = absl::OkStatus();
    return TryUpload(context, ref, container, specs, reports, uploaded, failure);
  });
  if (!failure.ok()) return failure;
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("uploading ", reports ? "test reports" : "artifacts", ": ",
                                                    std::string(status.message())));
  }
  return uploaded;
}

grpc::Status ArtifactUploader::TryUpload(grpc::ClientContext& context, const v1::StageRef& ref,
                                         const std::string& container,
                                         const google::protobuf::RepeatedPtrField<v1::ArtifactSpec>& specs,
                                         bool reports, std::vector<UploadedArtifact>& uploaded, absl::Status& failure) {
  uploaded.clear();
  v1::UploadArtifactResponse response;
  std::unique_ptr<grpc::ClientWriterInterface<v1::UploadArtifactRequest>> writer;  // at the first file
  bool call_broke = false;
  auto send = [&](const v1::UploadArtifactRequest& request) -> absl::Status {
    if (!writer) writer = stub_->UploadArtifact(&context, &response);
    // Thousands of small files are three small messages each: buffered, they leave in
    // frames of up to 64 KiB (gRPC flushes past that, and at WritesDone) instead of a
    // round trip through the transport per message.
    if (writer->Write(request, grpc::WriteOptions().set_buffer_hint())) return absl::OkStatus();
    call_broke = true;
    return absl::UnavailableError("the upload call broke off");
  };
  const char* what = reports ? "test reports" : "artifacts";
  std::map<std::string, std::string> path_by_name;      // file name -> container path
  std::map<std::string, size_t> sent_by_path;           // container path -> its place in `uploaded`
  absl::Status st;
  for (const v1::ArtifactSpec& spec : specs) {
    int matched = 0;
    st = VisitContainerFiles(*docker_, container, spec.pattern(), limits_.max_bytes,
                             [&](const MatchedFile& file, archive* data) -> absl::Status {
      ++matched;
      if (!IsValidUtf8(file.container_path)) {
        return absl::InvalidArgumentError(absl::StrCat("artifact ", SanitizeUtf8(file.container_path),
                                                       " has a name that is not UTF-8 text; rename it in the stage"));
      }
      auto [it, fresh] = path_by_name.emplace(file.name, file.container_path);
      if (!fresh && it->second == file.container_path) return absl::OkStatus();  // two patterns, one file: sent once
      if (!fresh) {
        return absl::FailedPreconditionError(absl::StrCat("two ", what, " named ", file.name, ": ", it->second, " and ",
                                                          file.container_path, " (a stage publishes each file name once)"));
      }
      // Past the limit the rest are only counted, so the error can say how many match.
      if (limits_.max_files > 0 && static_cast<int>(path_by_name.size()) > limits_.max_files) return absl::OkStatus();
      v1::UploadArtifactRequest request;
      v1::ArtifactHeader* header = request.mutable_header();
      *header->mutable_stage() = ref;
      header->set_path(file.container_path);
      header->set_report(reports);
      UploadedArtifact sent{file.container_path, file.size, ""};
      if (!file.hardlink_to.empty()) {
        // The same content as a file sent before: its digest, and no data.
        auto target_it = sent_by_path.find(file.hardlink_to);
        if (target_it == sent_by_path.end()) {
          return absl::FailedPreconditionError(
              absl::StrCat(file.container_path, " is a hard link to ", file.hardlink_to, ", which was not published"));
        }
        const UploadedArtifact& target = uploaded[target_it->second];
        sent.size = target.size;
        sent.sha256 = target.sha256;
        header->set_size(sent.size);
        header->set_sha256(sent.sha256);
        header->set_offset(sent.size);
        RETURN_IF_ERROR(send(request));
      } else {
        header->set_size(file.size);
        RETURN_IF_ERROR(send(request));
        ASSIGN_OR_RETURN(sent.sha256, SendEntryData(data, container, file.size, send));
      }
      sent_by_path[file.container_path] = uploaded.size();
      uploaded.push_back(std::move(sent));
      return absl::OkStatus();
    });
    if (absl::IsNotFound(st)) st = absl::OkStatus();  // the pattern's directory is not there
    if (st.ok() && matched == 0 && !spec.optional()) {
      st = absl::FailedPreconditionError(
          absl::StrCat("artifact pattern ", spec.pattern(), " matched no file (mark it optional if that is fine)"));
    }
    if (!st.ok()) break;
  }
  if (st.ok() && limits_.max_files > 0 && static_cast<int>(path_by_name.size()) > limits_.max_files) {
    st = absl::ResourceExhaustedError(absl::StrCat(path_by_name.size(), " files match the stage's ", what,
                                                   "; this agent publishes at most ", limits_.max_files,
                                                   " (--max_artifacts)"));
  }
  if (!writer) {  // nothing matched, or nothing got as far as the call
    failure = st;
    return grpc::Status::OK;
  }
  if (!st.ok() && !call_broke) {
    failure = st;
    context.TryCancel();  // publishes nothing
    (void)writer->Finish();
    return grpc::Status::OK;
  }
  if (!call_broke) {
    v1::UploadArtifactRequest commit;
    commit.mutable_commit()->set_files(static_cast<int32_t>(uploaded.size()));
    if (writer->Write(commit)) writer->WritesDone();
  }
  return writer->Finish();
}

absl::StatusOr<UploadedArtifact> ArtifactUploader::UploadServiceLog(const v1::StageRef& ref,
                                                                    const std::string& service,
                                                                    const std::string& local_path) {
  std::error_code ec;
  const auto size = static_cast<int64_t>(std::filesystem::file_size(local_path, ec));
  if (ec) return absl::NotFoundError(absl::StrCat(local_path, ": ", ec.message()));
  auto sha256 = Sha256OfFile(local_path);
  if (!sha256.ok()) return sha256.status();
  v1::ArtifactHeader header;
  *header.mutable_stage() = ref;
  header.set_path(absl::StrCat("/services/", service, ".log"));
  header.set_size(size);
  header.set_sha256(*sha256);
  header.set_service(service);

  // Each try first asks how much the controller already holds (an earlier try cut
  // off half way) and sends only the rest.
  absl::Status status = Retrier(TransferPolicy(absl::Hours(1))).Run([&](grpc::ClientContext& context) -> grpc::Status {
    v1::UploadOffsetResponse held;
    {
      grpc::ClientContext query;
      query.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      grpc::Status st = stub_->ArtifactUploadOffset(&query, header, &held);
      if (!st.ok()) return st;
    }
    const int64_t offset = held.offset() <= size ? held.offset() : 0;
    v1::UploadArtifactResponse response;
    auto writer = stub_->UploadArtifact(&context, &response);
    v1::UploadArtifactRequest request;
    *request.mutable_header() = header;
    request.mutable_header()->set_offset(offset);
    return StreamFile(*writer, request, local_path, offset, kChunkBytes);
  });
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("uploading ", header.path(), ": ", std::string(status.message())));
  }
  return UploadedArtifact{header.path(), size, *sha256};
}

}  // namespace dockyard
