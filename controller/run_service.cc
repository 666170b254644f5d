#include "controller/run_service.h"

#include <grpcpp/alarm.h>

#include <chrono>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/states.h"
#include "common/utf8.h"
#include "controller/blob_streams.h"

namespace dockyard {
namespace {

// Run watchers, and log followers whose stage has not started, poll the core on a
// short timer: 100 ms is well under what a person watching notices.
constexpr auto kPollInterval = std::chrono::milliseconds(100);
constexpr int64_t kLogChunkBytes = 256 * 1024;

grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Sends the run, then the run again whenever it changes, until it ends: woken by the
// core once a change of the run is saved, not by a timer. Reads run on the worker
// pool. At any moment exactly one of these is under way: a read on the pool, a write
// to the client, or a watch — so whoever ends it finishes it once.
class WatchReactor final : public grpc::ServerWriteReactor<v1::Run> {
 public:
  WatchReactor(grpc::CallbackServerContext* context, ControllerCore* core, WorkerPool* pool, std::string run_id)
      : context_(context), core_(core), pool_(pool), run_id_(std::move(run_id)) {
    Schedule();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away"));
    if (IsFinished(run_.state())) return Finish(grpc::Status::OK);
    // 0 when it fired at once (the next read is scheduled). An id left here after
    // its watch fired is harmless: UnwatchRun then says so and the read in flight ends it.
    absl::MutexLock lock(&mu_);
    watch_ = core_->WatchRun(run_id_, sent_version_, [this] { Schedule(); });
  }

  void OnCancel() override {
    uint64_t watch;
    {
      absl::MutexLock lock(&mu_);
      watch = std::exchange(watch_, 0);
    }
    // Taken back before it fired: nothing else will end the call.
    if (watch != 0 && core_->UnwatchRun(watch)) Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override { delete this; }

 private:
  void Schedule() {
    pool_->Post([this] { Send(); });
  }

  void Send() {
    if (context_->IsCancelled()) return Finish(grpc::Status::CANCELLED);
    sent_version_ = core_->RunVersion(run_id_);  // read first: a later change wakes the watch
    auto run = core_->GetRun(run_id_);
    if (!run.ok()) return Finish(ToGrpcStatus(run.status()));
    run_ = *std::move(run);
    StartWrite(&run_);
  }

  grpc::CallbackServerContext* context_;
  ControllerCore* core_;
  WorkerPool* pool_;
  const std::string run_id_;
  int64_t sent_version_ = -1;
  v1::Run run_;
  absl::Mutex mu_;
  uint64_t watch_ ABSL_GUARDED_BY(mu_) = 0;  // the watch waiting for the run to change
};

// Streams a stage attempt's log from an offset; with follow, until the attempt ends.
// Reads run on the worker pool; a follower at the end of the log waits for the log
// store to wake it (Watch), not for a timer. At any moment exactly one of these is
// under way: a read on the pool, a write to the client, a watch, or (before the
// stage's first attempt) the poll alarm — so whoever ends it finishes it once.
class LogReactor final : public grpc::ServerWriteReactor<v1::ReadLogResponse> {
 public:
  LogReactor(grpc::CallbackServerContext* context, ControllerCore* core, WorkerPool* pool,
             v1::ReadLogRequest request)
      : context_(context), core_(core), pool_(pool), request_(std::move(request)), offset_(request_.offset()) {
    Schedule();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "reader went away"));
    Schedule();
  }

  void OnCancel() override {
    uint64_t watch;
    {
      absl::MutexLock lock(&mu_);
      watch = std::exchange(watch_, 0);
    }
    // Taken back before it fired: nothing else will end the call.
    if (watch != 0 && core_->logs().Unwatch(watch)) Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override { delete this; }

 private:
  void Schedule() {
    pool_->Post([this] { Pump(); });
  }

  void Pump() {
    if (context_->IsCancelled()) return Finish(grpc::Status::CANCELLED);
    if (ref_.attempt() == 0) {
      // A stage that has not started yet has no log: wait for its first attempt.
      auto ref = core_->ResolveAttempt(request_.run_id(), request_.stage(), request_.attempt());
      if (!ref.ok()) return Finish(ToGrpcStatus(ref.status()));
      if (ref->attempt() == 0) {
        if (!request_.follow() || StageOver()) return Finish(grpc::Status::OK);
        alarm_.Set(std::chrono::system_clock::now() + kPollInterval, [this](bool) { Schedule(); });
        return;
      }
      ref_ = *std::move(ref);
    }
    auto slice = core_->logs().Read(ref_, offset_, kLogChunkBytes);
    if (!slice.ok()) return Finish(ToGrpcStatus(slice.status()));
    if (!slice->data.empty()) {
      offset_ += static_cast<int64_t>(slice->data.size());
      response_.set_data(std::move(slice->data));
      response_.set_next_offset(offset_);
      StartWrite(&response_);
      return;
    }
    if (slice->closed || !request_.follow()) return Finish(grpc::Status::OK);
    // 0 when it fired at once (the next read is scheduled). An id left here after
    // its watch fired is harmless: Unwatch then says so and the read in flight ends it.
    absl::MutexLock lock(&mu_);
    watch_ = core_->logs().Watch(ref_, offset_, [this] { Schedule(); });
  }

  // True when the stage ended without ever starting (skipped, cancelled).
  bool StageOver() {
    auto run = core_->GetRun(request_.run_id());
    if (!run.ok() || IsFinished(run->state())) return true;
    for (const v1::StageInfo& stage : run->stages()) {
      if (stage.name() == request_.stage()) return IsTerminal(stage.state());
    }
    return true;
  }

  grpc::CallbackServerContext* context_;
  ControllerCore* core_;
  WorkerPool* pool_;
  const v1::ReadLogRequest request_;
  v1::StageRef ref_;
  int64_t offset_;
  v1::ReadLogResponse response_;
  grpc::Alarm alarm_;
  absl::Mutex mu_;
  uint64_t watch_ ABSL_GUARDED_BY(mu_) = 0;  // the watch waiting for more of the log
};

}  // namespace

grpc::ServerUnaryReactor* RunServiceImpl::HasSource(grpc::CallbackServerContext* context,
                                                    const v1::HasSourceRequest* request,
                                                    v1::HasSourceResponse* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_SUBMIT, "HasSource");
  if (!caller.ok()) return Respond(context, caller.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pool_->Post([this, reactor, request, response] {
    response->set_present(core_->blobs().Contains(request->digest()));
    if (!response->present()) response->set_partial_bytes(core_->blobs().PartialSize(request->digest()));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerReadReactor<v1::UploadSourceRequest>* RunServiceImpl::UploadSource(
    grpc::CallbackServerContext* context, v1::UploadSourceResponse* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_SUBMIT, "UploadSource");
  if (!caller.ok()) return new Refusal<grpc::ServerReadReactor<v1::UploadSourceRequest>>(caller.status());
  ControllerCore* core = core_;
  auto start = [core, response](const v1::UploadSourceRequest& first)
      -> absl::StatusOr<std::unique_ptr<BlobStore::Writer>> {
    if (!first.has_header()) return absl::InvalidArgumentError("the first message must be the header");
    response->set_digest(first.header().sha256());
    return core->blobs().NewResumableWriter(first.header().sha256(), first.header().size(),
                                            first.header().offset());
  };
  return new BlobUploadReactor<v1::UploadSourceRequest>(pool_, start, [] { return absl::OkStatus(); });
}

grpc::ServerUnaryReactor* RunServiceImpl::SubmitRun(grpc::CallbackServerContext* context,
                                                    const v1::SubmitRunRequest* request,
                                                    v1::SubmitRunResponse* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_SUBMIT, "SubmitRun");
  if (!caller.ok()) return Respond(context, caller.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Answered once the run is saved (and the source's presence checked on disk).
  pool_->Post([this, reactor, request, response, owner = caller->name] {
    auto submitted = core_->SubmitRun(request->pipeline(), owner, request->idempotency_key());
    if (submitted.ok()) {
      response->set_run_id(submitted->run_id);
      response->set_existing(submitted->existing);
    }
    reactor->Finish(ToGrpcStatus(submitted.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::GetRun(grpc::CallbackServerContext* context,
                                                 const v1::GetRunRequest* request, v1::Run* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "GetRun");
  if (!caller.ok()) return Respond(context, caller.status());
  auto run = core_->GetRun(request->run_id());
  if (run.ok()) *response = *std::move(run);
  return Respond(context, run.status());
}

grpc::ServerWriteReactor<v1::Run>* RunServiceImpl::WatchRun(grpc::CallbackServerContext* context,
                                                            const v1::GetRunRequest* request) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "WatchRun");
  if (!caller.ok()) return new Refusal<grpc::ServerWriteReactor<v1::Run>>(caller.status());
  return new WatchReactor(context, core_, pool_, request->run_id());
}

grpc::ServerUnaryReactor* RunServiceImpl::CancelRun(grpc::CallbackServerContext* context,
                                                    const v1::CancelRunRequest* request,
                                                    v1::CancelRunResponse*) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_SUBMIT, "CancelRun");
  if (!caller.ok()) return Respond(context, caller.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pool_->Post([this, context, reactor, request, caller = *caller] {
    absl::Status cancelled = core_->CancelRun(request->run_id(), caller);
    authorizer_->Audit(*context, caller, "CancelRun " + request->run_id(), cancelled);
    reactor->Finish(ToGrpcStatus(cancelled));
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::ReadLogResponse>* RunServiceImpl::ReadLog(grpc::CallbackServerContext* context,
                                                                       const v1::ReadLogRequest* request) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "ReadLog");
  if (!caller.ok()) return new Refusal<grpc::ServerWriteReactor<v1::ReadLogResponse>>(caller.status());
  return new LogReactor(context, core_, pool_, *request);
}

grpc::ServerUnaryReactor* RunServiceImpl::ListAgents(grpc::CallbackServerContext* context,
                                                     const v1::ListAgentsRequest*,
                                                     v1::ListAgentsResponse* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "ListAgents");
  if (!caller.ok()) return Respond(context, caller.status());
  for (v1::AgentInfo& agent : core_->Agents()) *response->add_agents() = std::move(agent);
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* RunServiceImpl::ListCaches(grpc::CallbackServerContext* context,
                                                     const v1::ListCachesRequest*,
                                                     v1::ListCachesResponse* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "ListCaches");
  if (!caller.ok()) return Respond(context, caller.status());
  for (v1::CacheInfo& cache : core_->Caches()) *response->add_caches() = std::move(cache);
  response->set_max_bytes(core_->cache_max_bytes());
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* RunServiceImpl::DrainAgent(grpc::CallbackServerContext* context,
                                                     const v1::DrainAgentRequest* request,
                                                     v1::DrainAgentResponse*) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_ADMIN, "DrainAgent");
  if (!caller.ok()) return Respond(context, caller.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pool_->Post([this, context, reactor, request, caller = *caller] {
    absl::Status drained = core_->DrainAgent(request->name(), !request->undo());
    authorizer_->Audit(*context, caller, (request->undo() ? "UndrainAgent " : "DrainAgent ") + request->name(),
                       drained);
    reactor->Finish(ToGrpcStatus(drained));
  });
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::ListArtifacts(grpc::CallbackServerContext* context,
                                                        const v1::ListArtifactsRequest* request,
                                                        v1::ListArtifactsResponse* response) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "ListArtifacts");
  if (!caller.ok()) return Respond(context, caller.status());
  if (auto run = core_->GetRun(request->run_id()); !run.ok()) return Respond(context, run.status());
  for (v1::Artifact& artifact : core_->Artifacts(request->run_id())) {
    *response->add_artifacts() = std::move(artifact);
  }
  return Respond(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::BlobChunk>* RunServiceImpl::DownloadArtifact(
    grpc::CallbackServerContext* context, const v1::DownloadArtifactRequest* request) {
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "DownloadArtifact");
  if (!caller.ok()) return new Refusal<grpc::ServerWriteReactor<v1::BlobChunk>>(caller.status());
  std::vector<v1::Artifact> found = core_->Artifacts(request->run_id(), [request](const v1::Artifact& artifact) {
    return artifact.name() == request->name() && artifact.service() == request->service() &&
           (request->stage().empty() || artifact.stage() == request->stage());
  });
  const std::string sha256 = found.empty() ? "" : found.front().sha256();
  // An unknown name yields NOT_FOUND from the reader ("no blob").
  return NewBlobReader(&core_->blobs(), pool_, sha256);
}

grpc::ServerWriteReactor<v1::ArtifactPieces>* RunServiceImpl::DownloadArtifacts(
    grpc::CallbackServerContext* context, const v1::DownloadArtifactsRequest* request) {
  using Reactor = grpc::ServerWriteReactor<v1::ArtifactPieces>;
  auto caller = authorizer_->RequireRole(*context, v1::ROLE_READ, "DownloadArtifacts");
  if (!caller.ok()) return new Refusal<Reactor>(caller.status());
  // Only the run's own artifacts, whatever digests the call names.
  absl::flat_hash_map<std::string, int64_t> sizes;
  for (const v1::Artifact& artifact : core_->Artifacts(request->run_id())) {
    sizes.emplace(artifact.sha256(), artifact.size());
  }
  std::vector<SizedBlob> files;
  files.reserve(request->sha256_size());
  for (const std::string& sha256 : request->sha256()) {
    auto it = sizes.find(sha256);
    if (it == sizes.end()) {
      return new Refusal<Reactor>(absl::NotFoundError(
          absl::StrCat("run ", request->run_id(), " has no artifact with sha256 ", SanitizeUtf8(sha256))));
    }
    files.push_back({sha256, it->second});
  }
  return NewArtifactsReader(&core_->blobs(), pool_, std::move(files));
}

}  // namespace dockyard
