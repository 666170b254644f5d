#include "controller/agent_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "controller/blob_streams.h"

namespace dockyard {
namespace {

// One agent's session. Reads are handled in reactions (the core does no blocking
// I/O but small log appends); writes are queued so the core can Send from any thread.
class SessionReactor final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>,
                             public AgentChannel {
 public:
  SessionReactor(ControllerCore* core, std::string peer) : core_(core), peer_(std::move(peer)) {
    StartRead(&incoming_);
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
    {
      absl::MutexLock lock(&mu_);
      outgoing_.pop_front();
      if (!ok) broken_ = true;  // the read side fails too and finishes the call
      if (!ok || outgoing_.empty() || finishing_) {
        writing_ = false;
        return;
      }
      next = &outgoing_.front();
    }
    StartWrite(next);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return End(grpc::Status::OK);
    if (agent_.empty()) {
      if (!incoming_.has_register_()) {
        return End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "first message must be register"));
      }
      if (absl::Status st = core_->AttachAgent(this, incoming_.register_()); !st.ok()) {
        return End(ToGrpcStatus(st));
      }
      agent_ = incoming_.register_().name();
    } else {
      switch (incoming_.kind_case()) {
        case v1::AgentMessage::kStageStatus:
          core_->OnStageStatus(agent_, incoming_.stage_status());
          break;
        case v1::AgentMessage::kLog:
          core_->OnLogBatch(agent_, incoming_.log());
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
      finishing_ = true;
    }
    if (!status.ok()) {
      Logger("controller")->warn("agent session from {} ended: {}", peer_, status.error_message());
    }
    Finish(status);
  }

  ControllerCore* core_;
  const std::string peer_;
  std::string agent_;  // set once registered; only touched in reactions
  v1::AgentMessage incoming_;

  absl::Mutex mu_;
  std::deque<v1::ControllerMessage> outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* AgentServiceImpl::Session(
    grpc::CallbackServerContext* context) {
  return new SessionReactor(core_, context->peer());
}

grpc::ServerWriteReactor<v1::BlobChunk>* AgentServiceImpl::FetchSource(
    grpc::CallbackServerContext*, const v1::FetchSourceRequest* request) {
  return NewBlobReader(&core_->blobs(), pool_, request->digest());
}

grpc::ServerReadReactor<v1::UploadArtifactRequest>* AgentServiceImpl::UploadArtifact(
    grpc::CallbackServerContext*, v1::UploadArtifactResponse* response) {
  auto header = std::make_shared<v1::ArtifactHeader>();
  ControllerCore* core = core_;
  auto start = [core, header](const v1::UploadArtifactRequest& first)
      -> absl::StatusOr<std::unique_ptr<BlobStore::Writer>> {
    if (!first.has_header()) return absl::InvalidArgumentError("the first message must be the header");
    *header = first.header();
    const std::string name = header->path().substr(header->path().rfind('/') + 1);
    if (name.empty() || name == "." || name == "..") {
      return absl::InvalidArgumentError(absl::StrCat("bad artifact path \"", header->path(), "\""));
    }
    if (absl::Status st = core->CheckUploader(header->stage()); !st.ok()) return st;
    return core->blobs().NewWriter(header->sha256(), header->size());
  };
  auto done = [core, header, response]() -> absl::Status {
    v1::Artifact artifact;
    artifact.set_run_id(header->stage().run_id());
    artifact.set_stage(header->stage().stage());
    artifact.set_path(header->path());
    artifact.set_name(header->path().substr(header->path().rfind('/') + 1));
    artifact.set_size(header->size());
    artifact.set_sha256(header->sha256());
    response->set_sha256(header->sha256());
    response->set_size(header->size());
    Logger("controller")->info("run={} stage={} attempt={} artifact={} size={} sha256={}",
                               artifact.run_id(), artifact.stage(), header->stage().attempt(),
                               artifact.name(), artifact.size(), artifact.sha256());
    return core->RecordArtifact(artifact);
  };
  return new BlobUploadReactor<v1::UploadArtifactRequest>(pool_, start, done);
}

}  // namespace dockyard
