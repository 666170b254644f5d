#include "controller/server.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace dockyard {

absl::StatusOr<std::unique_ptr<ControllerServer>> ControllerServer::Start(ServerOptions options) {
  std::unique_ptr<ControllerServer> server(new ControllerServer());
  auto created = ControllerCore::Create(options.controller);
  if (!created.ok()) return created.status();
  server->core_ = *std::move(created);
  server->pool_ = std::make_unique<WorkerPool>(4);
  ControllerCore* core = server->core_.get();
  server->authorizer_ = std::make_unique<Authorizer>(core->identity());
  const Authorizer* authorizer = server->authorizer_.get();
  server->agent_service_ = std::make_unique<AgentServiceImpl>(core, server->pool_.get(), authorizer);
  server->run_service_ = std::make_unique<RunServiceImpl>(core, server->pool_.get(), authorizer);
  server->admin_service_ = std::make_unique<AdminServiceImpl>(core, server->pool_.get(), authorizer);

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (core->identity() == nullptr) {
    credentials = grpc::InsecureServerCredentials();
    Logger("controller")->warn(
        "--insecure: plain text, no tokens, no agent certificates; anyone who reaches {} controls it",
        options.listen);
  } else {
    // Client certificates are asked for but checked by CallerAuthenticator against
    // our CA, so a wrong one gets a reason instead of a failed handshake; clients
    // without one (the CLI, an agent enrolling) present tokens instead.
    grpc::SslServerCredentialsOptions tls(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
    tls.pem_root_certs = core->ca()->ca_pem();
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    pair.private_key = core->ca()->server().key_pem;
    pair.cert_chain = core->ca()->server().certificate_pem;
    tls.pem_key_cert_pairs.push_back(pair);
    credentials = grpc::SslServerCredentials(tls);
    credentials->SetAuthMetadataProcessor(std::make_shared<CallerAuthenticator>(core->identity()));
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, credentials, &port);
  builder.RegisterService(server->agent_service_.get());
  builder.RegisterService(server->run_service_.get());
  builder.RegisterService(server->admin_service_.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  // Agents behind NAT keep long-lived streams: let keepalives through.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // Find connections that died without a reset (a host gone, a cut cable), so a
  // returning agent is not refused as a second live session for long.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  server->address_ = absl::StrCat(host, ":", port);
  Logger("controller")->info("listening on {} ({}) data_dir={}", server->address_,
                             core->identity() == nullptr ? "plain text" : "TLS", options.controller.data_dir);
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
