#include "controller/server.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace dockyard {

absl::StatusOr<std::unique_ptr<ControllerServer>> ControllerServer::Start(ServerOptions options) {
  std::unique_ptr<ControllerServer> server(new ControllerServer());
  auto core = ControllerCore::Create(options.controller);
  if (!core.ok()) return core.status();
  server->core_ = *std::move(core);
  server->pool_ = std::make_unique<WorkerPool>(4);
  server->agent_service_ = std::make_unique<AgentServiceImpl>(server->core_.get(), server->pool_.get());
  server->run_service_ = std::make_unique<RunServiceImpl>(server->core_.get(), server->pool_.get());

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(server->agent_service_.get());
  builder.RegisterService(server->run_service_.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  // Agents behind NAT keep long-lived streams: let keepalives through.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  server->address_ = absl::StrCat(host, ":", port);
  Logger("controller")->info("listening on {} data_dir={}", server->address_, options.controller.data_dir);
  return server;
}

void ControllerServer::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }
}

ControllerServer::~ControllerServer() { Shutdown(); }

}  // namespace dockyard
