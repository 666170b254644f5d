#include "cli/client.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/controller_channel.h"
#include "common/blob_receiver.h"
#include "common/grpc_status.h"
#include "common/retrier.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

constexpr size_t kUploadChunk = 1 << 20;

// Quick questions: a few tries within half a minute.
RetryPolicy Quick() {
  RetryPolicy policy;
  policy.max_tries = 4;
  policy.patience = absl::Seconds(30);
  return policy;
}

// Followers ride out a controller that is briefly away (a restart); a follow
// itself may last as long as the run.
RetryPolicy Patient(absl::Duration patience) {
  RetryPolicy policy;
  policy.max_tries = 1 << 20;
  policy.patience = patience;
  policy.per_try_deadline = absl::Hours(24 * 7);
  policy.max_backoff = absl::Seconds(2);
  return policy;
}

}  // namespace

DockyardClient::DockyardClient(const std::string& address, ClientSecurity security)
    : security_(std::move(security)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = ControllerChannel(address, ChannelCredentials(security_), args);
  stub_ = v1::RunService::NewStub(channel);
  admin_ = v1::AdminService::NewStub(channel);
}

absl::Status DockyardClient::Explain(const absl::Status& status) const {
  return ExplainConnectFailure(status, security_);
}

absl::StatusOr<std::string> DockyardClient::UploadSource(const std::string& path) {
  auto digest = Sha256OfFile(path);
  if (!digest.ok()) return digest.status();
  const int64_t size = static_cast<int64_t>(std::filesystem::file_size(path));
  RetryPolicy policy = Quick();
  policy.per_try_deadline = absl::Minutes(30);
  absl::Status uploaded = Retrier(policy).Run([&](grpc::ClientContext& context) -> grpc::Status {
    // Present already, or partly (an earlier try was cut off): send only the rest.
    v1::HasSourceResponse held;
    {
      grpc::ClientContext query;
      query.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::HasSourceRequest request;
      request.set_digest(*digest);
      if (grpc::Status st = stub_->HasSource(&query, request, &held); !st.ok()) return st;
      if (held.present()) return grpc::Status::OK;
    }
    const int64_t offset = held.partial_bytes() <= size ? held.partial_bytes() : 0;
    v1::UploadSourceResponse response;
    auto writer = stub_->UploadSource(&context, &response);
    v1::UploadSourceRequest request;
    request.mutable_header()->set_sha256(*digest);
    request.mutable_header()->set_size(size);
    request.mutable_header()->set_offset(offset);
    bool open = writer->Write(request);
    std::ifstream in(path, std::ios::binary);
    in.seekg(offset);
    std::string buffer(kUploadChunk, '\0');
    while (open && in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      if (in.gcount() <= 0) break;
      request.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
      open = writer->Write(request);
    }
    writer->WritesDone();
    return writer->Finish();
  });
  if (!uploaded.ok()) return Explain(uploaded);
  return *digest;
}

absl::StatusOr<v1::SubmitRunResponse> DockyardClient::Submit(const v1::Pipeline& pipeline,
                                                             const std::string& idempotency_key) {
  // Without a key, one try only: after a lost answer a retry could start a second
  // run. With one, retrying is safe: the controller returns the first run.
  RetryPolicy policy = Quick();
  if (idempotency_key.empty()) policy.max_tries = 1;
  v1::SubmitRunRequest request;
  *request.mutable_pipeline() = pipeline;
  request.set_idempotency_key(idempotency_key);
  v1::SubmitRunResponse response;
  absl::Status st = Retrier(policy).Run(
      [&](grpc::ClientContext& context) { return stub_->SubmitRun(&context, request, &response); });
  if (!st.ok()) return Explain(st);
  return response;
}

absl::StatusOr<v1::Run> DockyardClient::GetRun(const std::string& run_id) {
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return stub_->GetRun(&c, request, &run); }));
  return run;
}

absl::Status DockyardClient::CancelRun(const std::string& run_id) {
  v1::CancelRunRequest request;
  request.set_run_id(run_id);
  v1::CancelRunResponse response;
  return Call([&](grpc::ClientContext& c) { return stub_->CancelRun(&c, request, &response); });
}

absl::StatusOr<std::vector<v1::AgentInfo>> DockyardClient::ListAgents() {
  v1::ListAgentsResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return stub_->ListAgents(&c, {}, &response); }));
  return std::vector<v1::AgentInfo>(response.agents().begin(), response.agents().end());
}

absl::StatusOr<v1::CollectGarbageResponse> DockyardClient::CollectGarbage(bool dry_run) {
  v1::CollectGarbageRequest request;
  request.set_dry_run(dry_run);
  v1::CollectGarbageResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return admin_->CollectGarbage(&c, request, &response); }));
  return response;
}

absl::Status DockyardClient::DrainAgent(const std::string& name, bool undo) {
  v1::DrainAgentRequest request;
  request.set_name(name);
  request.set_undo(undo);
  v1::DrainAgentResponse response;
  return Call([&](grpc::ClientContext& c) { return stub_->DrainAgent(&c, request, &response); });
}

absl::StatusOr<std::vector<v1::Artifact>> DockyardClient::ListArtifacts(const std::string& run_id) {
  v1::ListArtifactsRequest request;
  request.set_run_id(run_id);
  v1::ListArtifactsResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return stub_->ListArtifacts(&c, request, &response); }));
  return std::vector<v1::Artifact>(response.artifacts().begin(), response.artifacts().end());
}

absl::Status DockyardClient::WatchRun(const std::string& run_id,
                                      const std::function<void(const v1::Run&)>& on_change,
                                      absl::Duration patience) {
  return Explain(Retrier(Patient(patience)).Run([&](grpc::ClientContext& context) {
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    auto reader = stub_->WatchRun(&context, request);
    v1::Run run;
    while (reader->Read(&run)) on_change(run);
    return reader->Finish();
  }));
}

absl::Status DockyardClient::ReadLog(const std::string& run_id, const std::string& stage, int attempt,
                                     bool follow, const std::function<void(std::string_view)>& on_data,
                                     absl::Duration patience) {
  int64_t offset = 0;
  return Explain(Retrier(Patient(patience)).Run([&](grpc::ClientContext& context) {
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
  }));
}

absl::Status DockyardClient::DownloadArtifact(const v1::Artifact& artifact, const std::string& dest,
                                              const std::function<void(int64_t)>& on_progress) {
  v1::DownloadArtifactRequest request;
  request.set_run_id(artifact.run_id());
  request.set_name(artifact.name());
  request.set_stage(artifact.stage());
  request.set_service(artifact.service());
  RetryPolicy policy = Quick();
  policy.per_try_deadline = absl::Hours(1);
  return Explain(Retrier(policy).Run([&](grpc::ClientContext& context) {
    auto reader = stub_->DownloadArtifact(&context, request);
    return ToGrpcStatus(ReceiveBlob(*reader, dest, artifact.sha256(), artifact.size(), on_progress));
  }));
}

absl::Status DockyardClient::DownloadArtifacts(const std::string& run_id,
                                               const std::vector<const v1::Artifact*>& artifacts,
                                               const std::vector<std::string>& dests, size_t& in_place) {
  in_place = 0;
  absl::Status verdict;  // about the content: final, never retried
  RetryPolicy policy = Quick();
  policy.per_try_deadline = absl::Hours(1);
  absl::Status status = Retrier(policy).Run([&](grpc::ClientContext& context) -> grpc::Status {
    v1::DownloadArtifactsRequest request;
    request.set_run_id(run_id);
    const size_t base = in_place;  // the request's first file
    for (size_t i = base; i < artifacts.size(); ++i) request.add_sha256(artifacts[i]->sha256());
    auto reader = stub_->DownloadArtifacts(&context, request);
    std::unique_ptr<ReceivedFile> file;  // of artifacts[in_place], once its first piece came
    // Puts the open file in place once it is whole and verified.
    auto commit = [&]() -> absl::Status {
      if (!file) return absl::OkStatus();
      RETURN_IF_ERROR(file->Commit(artifacts[in_place]->sha256(), artifacts[in_place]->size()));
      file.reset();
      ++in_place;
      return absl::OkStatus();
    };
    v1::ArtifactPieces message;
    while (verdict.ok() && reader->Read(&message)) {
      for (const v1::ArtifactPiece& piece : message.pieces()) {
        const size_t index = base + static_cast<size_t>(piece.index());
        if (file && index == in_place + 1) verdict = commit();  // the open file is whole
        if (verdict.ok() && (piece.index() < 0 || index != in_place)) {
          verdict = absl::DataLossError(
              absl::StrCat("the controller sent file ", piece.index(), " of the call out of order"));
        }
        if (!verdict.ok()) break;
        if (!file) file = std::make_unique<ReceivedFile>(dests[in_place]);
        file->Append(piece.data());
      }
    }
    if (!verdict.ok()) context.TryCancel();
    if (grpc::Status finished = reader->Finish(); !finished.ok() && verdict.ok()) return finished;
    if (verdict.ok()) verdict = commit();
    if (verdict.ok() && in_place != artifacts.size()) {
      verdict = absl::DataLossError(absl::StrCat("the controller sent ", in_place, " of ", artifacts.size(), " files"));
    }
    return ToGrpcStatus(verdict);
  });
  if (!verdict.ok()) return verdict;
  return Explain(status);
}

absl::Status DockyardClient::Call(const std::function<grpc::Status(grpc::ClientContext&)>& call) {
  return Explain(Retrier(Quick()).Run(call));
}

absl::StatusOr<v1::SecretResponse> DockyardClient::CreateEnrolToken(int uses, absl::Duration ttl) {
  v1::CreateEnrolTokenRequest request;
  request.set_uses(uses);
  request.set_ttl_ms(absl::ToInt64Milliseconds(ttl));
  v1::SecretResponse response;
  // Not retried: each success makes a new secret.
  RetryPolicy once;
  once.max_tries = 1;
  RETURN_IF_ERROR(Explain(Retrier(once).Run(
      [&](grpc::ClientContext& c) { return admin_->CreateEnrolToken(&c, request, &response); })));
  return response;
}

absl::StatusOr<int> DockyardClient::RevokeAgent(const std::string& name) {
  v1::RevokeAgentRequest request;
  request.set_name(name);
  v1::RevokeAgentResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return admin_->RevokeAgent(&c, request, &response); }));
  return response.requeued();
}

absl::StatusOr<v1::SecretResponse> DockyardClient::CreateToken(v1::Role role, const std::string& name) {
  v1::CreateTokenRequest request;
  request.set_role(role);
  request.set_name(name);
  v1::SecretResponse response;
  RetryPolicy once;
  once.max_tries = 1;
  RETURN_IF_ERROR(Explain(
      Retrier(once).Run([&](grpc::ClientContext& c) { return admin_->CreateToken(&c, request, &response); })));
  return response;
}

absl::StatusOr<std::vector<v1::TokenInfo>> DockyardClient::ListTokens() {
  v1::ListTokensResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return admin_->ListTokens(&c, {}, &response); }));
  return std::vector<v1::TokenInfo>(response.tokens().begin(), response.tokens().end());
}

absl::Status DockyardClient::RevokeToken(const std::string& id) {
  v1::RevokeTokenRequest request;
  request.set_id(id);
  v1::RevokeTokenResponse response;
  return Call([&](grpc::ClientContext& c) { return admin_->RevokeToken(&c, request, &response); });
}

absl::StatusOr<v1::ListCachesResponse> DockyardClient::ListCaches() {
  v1::ListCachesResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return stub_->ListCaches(&c, {}, &response); }));
  return response;
}

absl::StatusOr<bool> DockyardClient::SetSecret(const std::string& name, const std::string& value) {
  v1::SetSecretRequest request;
  request.set_name(name);
  request.set_value(value);
  v1::SetSecretResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return admin_->SetSecret(&c, request, &response); }));
  return response.replaced();
}

absl::StatusOr<std::vector<v1::SecretInfo>> DockyardClient::ListSecrets() {
  v1::ListSecretsResponse response;
  RETURN_IF_ERROR(Call([&](grpc::ClientContext& c) { return admin_->ListSecrets(&c, {}, &response); }));
  return std::vector<v1::SecretInfo>(response.secrets().begin(), response.secrets().end());
}

absl::Status DockyardClient::DeleteSecret(const std::string& name) {
  v1::DeleteSecretRequest request;
  request.set_name(name);
  v1::DeleteSecretResponse response;
  return Call([&](grpc::ClientContext& c) { return admin_->DeleteSecret(&c, request, &response); });
}

}  // namespace dockyard
