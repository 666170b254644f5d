#include "tests/support/test_credentials.h"

#include <gtest/gtest.h>

#include "common/files.h"
#include "common/x509.h"
#include "dockyard/v1/agent.grpc.pb.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard::testing {

ClientSecurity AdminCredentials(const std::string& data_dir) {
  ClientSecurity security;
  auto ca = ReadFileToString(data_dir + "/tls/ca.crt");
  auto token = ReadFirstLine(data_dir + "/admin.token");
  EXPECT_TRUE(ca.ok()) << ca.status();
  EXPECT_TRUE(token.ok()) << token.status();
  security.ca_pem = ca.value_or("");
  security.token = token.value_or("");
  return security;
}

std::shared_ptr<grpc::Channel> SecureChannel(const std::string& address, const ClientSecurity& security) {
  return grpc::CreateChannel(address, ChannelCredentials(security));
}

ClientSecurity EnrolAgent(const std::string& address, const std::string& data_dir, const std::string& name) {
  const ClientSecurity admin = AdminCredentials(data_dir);
  auto admin_stub = v1::AdminService::NewStub(SecureChannel(address, admin));
  v1::SecretResponse enrol_token;
  {
    grpc::ClientContext context;
    v1::CreateEnrolTokenRequest request;
    grpc::Status st = admin_stub->CreateEnrolToken(&context, request, &enrol_token);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  ClientSecurity agent;
  agent.ca_pem = admin.ca_pem;
  auto key = NewPrivateKeyPem();
  auto csr = NewCsrPem(*key, name);
  auto stub = v1::AgentService::NewStub(SecureChannel(address, agent));
  grpc::ClientContext context;
  v1::EnrolRequest request;
  request.set_token(enrol_token.secret());
  request.set_name(name);
  request.set_csr_pem(*csr);
  v1::EnrolResponse response;
  grpc::Status st = stub->Enrol(&context, request, &response);
  EXPECT_TRUE(st.ok()) << st.error_message();
  agent.key_pem = *key;
  agent.certificate_pem = response.certificate_pem();
  return agent;
}

}  // namespace dockyard::testing
