#include "controller/cli/client.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/blob_receiver.h"
#include "common/grpc_status.h"
#include "common/sha256.h"

namespace dockyard {
namespace {

constexpr size_t kUploadChunk = 1 << 20;

void ShortDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

// Retries `attempt` while it fails with UNAVAILABLE, for up to `patience`. The call
// itself keeps whatever progress it made (offsets), so a retry resumes.
absl::Status WithPatience(absl::Duration patience, const std::function<grpc::Status()>& attempt) {
  const absl::Time give_up = absl::Now() + patience;
  absl::Duration pause = absl::Milliseconds(200);
  for (;;) {
    grpc::Status status = attempt();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() > give_up) {
      return FromGrpcStatus(status);
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(pause));
    pause = std::min(pause * 2, absl::Seconds(2));
  }
}

}  // namespace

DockyardClient::DockyardClient(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  stub_ = v1::RunService::NewStub(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

absl::StatusOr<std::string> DockyardClient::UploadSource(const std::string& path) {
  auto digest = Sha256OfFile(path);
  if (!digest.ok()) return digest.status();
  {
    grpc::ClientContext context;
    ShortDeadline(context);
    v1::HasSourceRequest request;
    request.set_digest(*digest);
    v1::HasSourceResponse response;
    if (grpc::Status st = stub_->HasSource(&context, request, &response); !st.ok()) return FromGrpcStatus(st);
    if (response.present()) return *digest;
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  v1::UploadSourceResponse response;
  auto writer = stub_->UploadSource(&context, &response);
  v1::UploadSourceRequest request;
  request.mutable_header()->set_sha256(*digest);
  request.mutable_header()->set_size(static_cast<int64_t>(std::filesystem::file_size(path)));
  bool open = writer->Write(request);
  std::ifstream in(path, std::ios::binary);
  std::string buffer(kUploadChunk, '\0');
  while (open && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() <= 0) break;
    request.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    open = writer->Write(request);
  }
  writer->WritesDone();
  if (grpc::Status st = writer->Finish(); !st.ok()) return FromGrpcStatus(st);
  return *digest;
}

absl::StatusOr<std::string> DockyardClient::Submit(const v1::Pipeline& pipeline) {
  grpc::ClientContext context;
  ShortDeadline(context);
  v1::SubmitRunRequest request;
  *request.mutable_pipeline() = pipeline;
  v1::SubmitRunResponse response;
  if (grpc::Status st = stub_->SubmitRun(&context, request, &response); !st.ok()) return FromGrpcStatus(st);
  return response.run_id();
}

absl::StatusOr<v1::Run> DockyardClient::GetRun(const std::string& run_id) {
  grpc::ClientContext context;
  ShortDeadline(context);
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  if (grpc::Status st = stub_->GetRun(&context, request, &run); !st.ok()) return FromGrpcStatus(st);
  return run;
}

absl::Status DockyardClient::CancelRun(const std::string& run_id) {
  grpc::ClientContext context;
  ShortDeadline(context);
  v1::CancelRunRequest request;
  request.set_run_id(run_id);
  v1::CancelRunResponse response;
  return FromGrpcStatus(stub_->CancelRun(&context, request, &response));
}

absl::StatusOr<std::vector<v1::AgentInfo>> DockyardClient::ListAgents() {
  grpc::ClientContext context;
  ShortDeadline(context);
  v1::ListAgentsResponse response;
  if (grpc::Status st = stub_->ListAgents(&context, {}, &response); !st.ok()) return FromGrpcStatus(st);
  return std::vector<v1::AgentInfo>(response.agents().begin(), response.agents().end());
}

absl::Status DockyardClient::DrainAgent(const std::string& name, bool undo) {
  grpc::ClientContext context;
  ShortDeadline(context);
  v1::DrainAgentRequest request;
  request.set_name(name);
  request.set_undo(undo);
  v1::DrainAgentResponse response;
  return FromGrpcStatus(stub_->DrainAgent(&context, request, &response));
}

absl::StatusOr<std::vector<v1::Artifact>> DockyardClient::ListArtifacts(const std::string& run_id) {
  grpc::ClientContext context;
  ShortDeadline(context);
  v1::ListArtifactsRequest request;
  request.set_run_id(run_id);
  v1::ListArtifactsResponse response;
  if (grpc::Status st = stub_->ListArtifacts(&context, request, &response); !st.ok()) return FromGrpcStatus(st);
  return std::vector<v1::Artifact>(response.artifacts().begin(), response.artifacts().end());
}

absl::Status DockyardClient::WatchRun(const std::string& run_id,
                                      const std::function<void(const v1::Run&)>& on_change,
                                      absl::Duration patience) {
  return WithPatience(patience, [&] {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    auto reader = stub_->WatchRun(&context, request);
    v1::Run run;
    while (reader->Read(&run)) on_change(run);
    return reader->Finish();
  });
}

absl::Status DockyardClient::ReadLog(const std::string& run_id, const std::string& stage, int attempt,
                                     bool follow, const std::function<void(std::string_view)>& on_data,
                                     absl::Duration patience) {
  int64_t offset = 0;
  return WithPatience(patience, [&] {
    grpc::ClientContext context;
    v1::ReadLogRequest request;
    request.set_run_id(run_id);
    request.set_stage(stage);
    request.set_attempt(attempt);
    request.set_offset(offset);
    request.set_follow(follow);
    auto reader = stub_->ReadLog(&context, request);
    v1::ReadLogResponse response;
    while (reader->Read(&response)) {
      offset = response.next_offset();
      on_data(response.data());
    }
    return reader->Finish();
  });
}

absl::Status DockyardClient::DownloadArtifact(const v1::Artifact& artifact, const std::string& dest,
                                              const std::function<void(int64_t)>& on_progress) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  v1::DownloadArtifactRequest request;
  request.set_run_id(artifact.run_id());
  request.set_name(artifact.name());
  auto reader = stub_->DownloadArtifact(&context, request);
  return ReceiveBlob(*reader, dest, artifact.sha256(), artifact.size(), on_progress);
}

}  // namespace dockyard
