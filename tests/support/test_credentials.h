// Test support for in-process controllers: the credentials a real user or agent
// would have — the admin token and CA from the controller's data dir, and agent
// certificates obtained through the real enrolment RPC — so tests that play the
// agent or the client run over TLS like everything else.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/client_security.h"

namespace dockyard::testing {

// The controller's CA and its first admin token, read from `data_dir`.
ClientSecurity AdminCredentials(const std::string& data_dir);
// Enrols agent `name` at `address` (an enrolment token made with the admin
// token, a fresh key and CSR, the Enrol RPC) and returns its credentials.
ClientSecurity EnrolAgent(const std::string& address, const std::string& data_dir, const std::string& name);
std::shared_ptr<grpc::Channel> SecureChannel(const std::string& address, const ClientSecurity& security);

}  // namespace dockyard::testing
