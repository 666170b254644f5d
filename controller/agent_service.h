// AgentService over the callback API: one Session reactor per connected agent, plus
// source downloads, artifact uploads, cache snapshot transfers and enrolment. Every call but Enrol comes
// from an enrolled agent's certificate, and an agent may only touch the attempts
// leased to it. Blocking disk and crypto work runs on a WorkerPool.
#pragma once

#include "common/worker_pool.h"
#include "controller/authorization.h"
#include "controller/controller_core.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `core`, `pool` and `authorizer` must outlive the server.
  AgentServiceImpl(ControllerCore* core, WorkerPool* pool, const Authorizer* authorizer)
      : core_(core), pool_(pool), authorizer_(authorizer) {}

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* FetchSource(grpc::CallbackServerContext* context,
                                                       const v1::FetchSourceRequest* request) override;
  grpc::ServerReadReactor<v1::UploadArtifactRequest>* UploadArtifact(
      grpc::CallbackServerContext* context, v1::UploadArtifactResponse* response) override;
  grpc::ServerUnaryReactor* ArtifactUploadOffset(grpc::CallbackServerContext* context,
                                                 const v1::ArtifactHeader* request,
                                                 v1::UploadOffsetResponse* response) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* FetchArtifact(grpc::CallbackServerContext* context,
                                                         const v1::FetchArtifactRequest* request) override;
  grpc::ServerUnaryReactor* MissingCacheBlobs(grpc::CallbackServerContext* context,
                                              const v1::MissingCacheBlobsRequest* request,
                                              v1::MissingCacheBlobsResponse* response) override;
  grpc::ServerReadReactor<v1::UploadCacheBlobRequest>* UploadCacheBlob(grpc::CallbackServerContext* context,
                                                                      v1::UploadCacheBlobResponse* response) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* FetchCacheBlob(grpc::CallbackServerContext* context,
                                                          const v1::FetchCacheBlobRequest* request) override;
  grpc::ServerUnaryReactor* Enrol(grpc::CallbackServerContext* context, const v1::EnrolRequest* request,
                                  v1::EnrolResponse* response) override;

 private:
  ControllerCore* core_;
  WorkerPool* pool_;
  const Authorizer* authorizer_;
};

}  // namespace dockyard
