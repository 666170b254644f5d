// AgentService over the callback API: one Session reactor per connected agent, plus
// source downloads and artifact uploads. Blocking disk work runs on a WorkerPool.
#pragma once

#include "common/worker_pool.h"
#include "controller/controller_core.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `core` and `pool` must outlive the server.
  AgentServiceImpl(ControllerCore* core, WorkerPool* pool) : core_(core), pool_(pool) {}

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* FetchSource(grpc::CallbackServerContext* context,
                                                       const v1::FetchSourceRequest* request) override;
  grpc::ServerReadReactor<v1::UploadArtifactRequest>* UploadArtifact(
      grpc::CallbackServerContext* context, v1::UploadArtifactResponse* response) override;

 private:
  ControllerCore* core_;
  WorkerPool* pool_;
};

}  // namespace dockyard
