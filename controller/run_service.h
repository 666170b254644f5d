// RunService over the callback API: what the CLI uses to upload sources, submit and
// watch runs, follow logs and fetch artifacts. Every call needs a token whose role
// covers it (read: look; submit: upload, submit, cancel its own runs; admin: the rest).
#pragma once

#include "common/worker_pool.h"
#include "controller/authorization.h"
#include "controller/controller_core.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard {

class RunServiceImpl final : public v1::RunService::CallbackService {
 public:
  // `core`, `pool` and `authorizer` must outlive the server.
  RunServiceImpl(ControllerCore* core, WorkerPool* pool, const Authorizer* authorizer)
      : core_(core), pool_(pool), authorizer_(authorizer) {}

  grpc::ServerUnaryReactor* HasSource(grpc::CallbackServerContext* context, const v1::HasSourceRequest* request,
                                      v1::HasSourceResponse* response) override;
  grpc::ServerReadReactor<v1::UploadSourceRequest>* UploadSource(grpc::CallbackServerContext* context,
                                                                 v1::UploadSourceResponse* response) override;
  grpc::ServerUnaryReactor* SubmitRun(grpc::CallbackServerContext* context, const v1::SubmitRunRequest* request,
                                      v1::SubmitRunResponse* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context, const v1::GetRunRequest* request,
                                   v1::Run* response) override;
  grpc::ServerWriteReactor<v1::Run>* WatchRun(grpc::CallbackServerContext* context,
                                              const v1::GetRunRequest* request) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context, const v1::CancelRunRequest* request,
                                      v1::CancelRunResponse* response) override;
  grpc::ServerWriteReactor<v1::ReadLogResponse>* ReadLog(grpc::CallbackServerContext* context,
                                                         const v1::ReadLogRequest* request) override;
  grpc::ServerUnaryReactor* ListCaches(grpc::CallbackServerContext* context, const v1::ListCachesRequest* request,
                                       v1::ListCachesResponse* response) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* context, const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;
  grpc::ServerUnaryReactor* DrainAgent(grpc::CallbackServerContext* context, const v1::DrainAgentRequest* request,
                                       v1::DrainAgentResponse* response) override;
  grpc::ServerUnaryReactor* ListArtifacts(grpc::CallbackServerContext* context,
                                          const v1::ListArtifactsRequest* request,
                                          v1::ListArtifactsResponse* response) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* DownloadArtifact(grpc::CallbackServerContext* context,
                                                            const v1::DownloadArtifactRequest* request) override;
  grpc::ServerWriteReactor<v1::ArtifactPieces>* DownloadArtifacts(
      grpc::CallbackServerContext* context, const v1::DownloadArtifactsRequest* request) override;

 private:
  ControllerCore* core_;
  WorkerPool* pool_;
  const Authorizer* authorizer_;
};

}  // namespace dockyard
