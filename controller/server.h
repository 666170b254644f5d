// The controller as a running gRPC server: core, services and listening port —
// TLS with optional client certificates (agents) unless options say insecure.
// main.cc is a thin wrapper over this; tests start it in-process on port 0.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/worker_pool.h"
#include "controller/admin_service.h"
#include "controller/agent_service.h"
#include "controller/authentication.h"
#include "controller/authorization.h"
#include "controller/controller_core.h"
#include "controller/run_service.h"

namespace dockyard {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  ControllerOptions controller;
};

class ControllerServer {
 public:
  static absl::StatusOr<std::unique_ptr<ControllerServer>> Start(ServerOptions options);
  // Stops accepting, ends open streams (agents reconnect elsewhere or later).
  ~ControllerServer();

  // "127.0.0.1:PORT" with the port actually bound.
  const std::string& address() const { return address_; }
  ControllerCore& core() { return *core_; }
  void Shutdown();

 private:
  ControllerServer() = default;

  std::unique_ptr<ControllerCore> core_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<RunServiceImpl> run_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace dockyard
