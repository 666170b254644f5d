#include "controller/agent_service.h"

#include <deque>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "controller/artifact_upload.h"
#include "controller/blob_streams.h"

namespace dockyard {
namespace {

// One agent's session. Reads are handled in reactions (the core does no blocking
// I/O but small log appends); writes are queued so the core can Send from any thread.
class SessionReactor final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>,
                             public AgentChannel {
 public:
  SessionReactor(ControllerCore* core, std::string peer, absl::StatusOr<Caller> caller)
      : core_(core), peer_(std::move(peer)) {
    if (!caller.ok()) {
      End(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    StartRead(&incoming_);
  }

  void Close(const absl::Status& why) override {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      finishing_ = true;
      // Queued orders (the revoked agent's cancels) go out first.
      if (writing_) {
        close_status_ = ToGrpcStatus(why);
        return;
      }
    }
    Finish(ToGrpcStatus(why));
  }

  void Send(v1::ControllerMessage message) override {
    const v1::ControllerMessage* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (finishing_ || broken_) return;
      outgoing_.push_back(std::move(message));
      if (writing_) return;
      writing_ = true;
      next = &outgoing_.front();
    }
    // Outside the lock: gRPC may run OnWriteDone inline on this thread.
    StartWrite(next);
  }

  void OnWriteDone(bool ok) override {
    const v1::ControllerMessage* next = nullptr;
    std::optional<grpc::Status> close;
    {
      absl::MutexLock lock(&mu_);
      outgoing_.pop_front();
      if (!ok) broken_ = true;  // the read side fails too and finishes the call
      if (!ok || outgoing_.empty()) {
        writing_ = false;
        close = std::move(close_status_);
        close_status_.reset();
      } else {
        next = &outgoing_.front();
      }
    }
    if (close) return Finish(*close);
    if (next != nullptr) StartWrite(next);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return End(grpc::Status::OK);
    if (agent_.empty()) {
      if (!incoming_.has_register_()) {
        return End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "first message must be register"));
      }
      if (absl::Status st = core_->AttachAgent(this, incoming_.register_(), caller_); !st.ok()) {
        return End(ToGrpcStatus(st));
      }
      agent_ = incoming_.register_().name();
    } else {
      switch (incoming_.kind_case()) {
        case v1::AgentMessage::kStageStatus:
          core_->OnStageStatus(agent_, incoming_.stage_status());
          break;
        case v1::AgentMessage::kLog:
          core_->OnLogBatch(agent_, std::move(*incoming_.mutable_log()));
          break;
        case v1::AgentMessage::kHeartbeat:
          core_->OnHeartbeat(agent_, incoming_.heartbeat());
          break;
        default:
          return End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unexpected message"));
      }
    }
    StartRead(&incoming_);
  }

  void OnDone() override {
    if (!agent_.empty()) core_->DetachAgent(this, agent_);
    delete this;
  }

 private:
  void End(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;  // Close() got there first
      finishing_ = true;
    }
    if (!status.ok()) {
      Logger("controller")->warn("agent session from {} ended: {}", peer_, status.error_message());
    }
    Finish(status);
  }

  ControllerCore* core_;
  const std::string peer_;
  Caller caller_;      // who the connection proved to be
  std::string agent_;  // set once registered; only touched in reactions
  v1::AgentMessage incoming_;

  absl::Mutex mu_;
  std::deque<v1::ControllerMessage> outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> close_status_ ABSL_GUARDED_BY(mu_);  // Finish once the queue is sent
};

}  // namespace

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* AgentServiceImpl::Session(
    grpc::CallbackServerContext* context) {
  return new SessionReactor(core_, context->peer(), authorizer_->RequireAgent(*context, "Session"));
}

grpc::ServerWriteReactor<v1::BlobChunk>* AgentServiceImpl::FetchSource(grpc::CallbackServerContext* context,
                                                                       const v1::FetchSourceRequest* request) {
  auto agent = authorizer_->RequireAgent(*context, "FetchSource");
  if (!agent.ok()) return new Refusal<grpc::ServerWriteReactor<v1::BlobChunk>>(agent.status());
  if (absl::Status st = core_->CheckSourceFetch(agent->name, request->digest()); !st.ok()) {
    authorizer_->Audit(*context, *agent, "FetchSource", st);
    return new Refusal<grpc::ServerWriteReactor<v1::BlobChunk>>(st);
  }
  return NewBlobReader(&core_->blobs(), pool_, request->digest());
}

grpc::ServerReadReactor<v1::UploadArtifactRequest>* AgentServiceImpl::UploadArtifact(
    grpc::CallbackServerContext* context, v1::UploadArtifactResponse* response) {
  auto agent = authorizer_->RequireAgent(*context, "UploadArtifact");
  if (!agent.ok()) return new Refusal<grpc::ServerReadReactor<v1::UploadArtifactRequest>>(agent.status());
  return new ArtifactUploadReactor(core_, pool_, *std::move(agent), context->peer(), response);
}

grpc::ServerUnaryReactor* AgentServiceImpl::ArtifactUploadOffset(grpc::CallbackServerContext* context,
                                                                 const v1::ArtifactHeader* request,
                                                                 v1::UploadOffsetResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto agent = authorizer_->RequireAgent(*context, "ArtifactUploadOffset");
  if (!agent.ok()) {
    reactor->Finish(ToGrpcStatus(agent.status()));
    return reactor;
  }
  if (absl::Status st = core_->CheckUploader(agent->name, request->stage()); !st.ok()) {
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  // A stat of the partial file: disk, so off the reaction.
  pool_->Post([this, reactor, request, response] {
    response->set_offset(core_->blobs().PartialSize(request->sha256()));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::BlobChunk>* AgentServiceImpl::FetchArtifact(grpc::CallbackServerContext* context,
                                                                         const v1::FetchArtifactRequest* request) {
  auto agent = authorizer_->RequireAgent(*context, "FetchArtifact");
  if (!agent.ok()) return new Refusal<grpc::ServerWriteReactor<v1::BlobChunk>>(agent.status());
  if (absl::Status st = core_->CheckArtifactFetch(agent->name, request->run_id(), request->sha256()); !st.ok()) {
    if (absl::IsPermissionDenied(st)) authorizer_->Audit(*context, *agent, "FetchArtifact", st);
    return new Refusal<grpc::ServerWriteReactor<v1::BlobChunk>>(st);
  }
  return NewBlobReader(&core_->blobs(), pool_, request->sha256());
}

grpc::ServerUnaryReactor* AgentServiceImpl::MissingCacheBlobs(grpc::CallbackServerContext* context,
                                                              const v1::MissingCacheBlobsRequest* request,
                                                              v1::MissingCacheBlobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto agent = authorizer_->RequireAgent(*context, "MissingCacheBlobs");
  if (!agent.ok()) {
    reactor->Finish(ToGrpcStatus(agent.status()));
    return reactor;
  }
  pool_->Post([this, reactor, request, response] {  // stats: disk
    for (const std::string& digest : request->digests()) {
      if (!IsSha256Hex(digest) || !core_->cache_blobs().Contains(digest)) response->add_digests(digest);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerReadReactor<v1::UploadCacheBlobRequest>* AgentServiceImpl::UploadCacheBlob(
    grpc::CallbackServerContext* context, v1::UploadCacheBlobResponse*) {
  auto agent = authorizer_->RequireAgent(*context, "UploadCacheBlob");
  if (!agent.ok()) return new Refusal<grpc::ServerReadReactor<v1::UploadCacheBlobRequest>>(agent.status());
  ControllerCore* core = core_;
  auto start = [core](const v1::UploadCacheBlobRequest& first) -> absl::StatusOr<std::unique_ptr<BlobStore::Writer>> {
    if (!first.has_header()) return absl::InvalidArgumentError("the first message must be the header");
    return core->cache_blobs().NewResumableWriter(first.header().sha256(), first.header().size(),
                                                  first.header().offset());
  };
  return new BlobUploadReactor<v1::UploadCacheBlobRequest>(pool_, start, [] { return absl::OkStatus(); });
}

grpc::ServerWriteReactor<v1::BlobChunk>* AgentServiceImpl::FetchCacheBlob(grpc::CallbackServerContext* context,
                                                                          const v1::FetchCacheBlobRequest* request) {
  auto agent = authorizer_->RequireAgent(*context, "FetchCacheBlob");
  if (!agent.ok()) return new Refusal<grpc::ServerWriteReactor<v1::BlobChunk>>(agent.status());
  return NewBlobReader(&core_->cache_blobs(), pool_, request->digest());
}

grpc::ServerUnaryReactor* AgentServiceImpl::Enrol(grpc::CallbackServerContext* context,
                                                  const v1::EnrolRequest* request, v1::EnrolResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  IdentityStore* identity = core_->identity();
  if (identity == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "this controller runs with --insecure: agents need no enrolment"));
    return reactor;
  }
  // Signing and saving are blocking work.
  pool_->Post([identity, reactor, request, response, peer = context->peer()] {
    auto enrolled = identity->Enrol(*request);
    if (enrolled.ok()) *response = *std::move(enrolled);
    AuditLine("Enrol", "agent " + request->name(), peer, enrolled.status());
    reactor->Finish(ToGrpcStatus(enrolled.status()));
  });
  return reactor;
}

}  // namespace dockyard
