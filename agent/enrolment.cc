#include "agent/enrolment.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/controller_channel.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/retrier.h"
#include "common/x509.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

absl::StatusOr<ClientSecurity> LoadOrEnrol(const EnrolmentOptions& options) {
  const std::string key_path = options.identity_dir + "/agent.key";
  const std::string cert_path = options.identity_dir + "/agent.crt";
  const std::string ca_path = options.identity_dir + "/ca.crt";
  ClientSecurity security;
  auto certificate = ReadFileToString(cert_path);
  if (certificate.ok()) {
    auto key = ReadFileToString(key_path);
    if (!key.ok()) return key.status();
    auto ca = ReadFileToString(ca_path);
    if (!ca.ok()) return ca.status();
    auto name = CommonName(*certificate);
    if (!name.ok()) return absl::InvalidArgumentError(absl::StrCat(cert_path, ": ", std::string(name.status().message())));
    if (*name != options.name) {
      return absl::FailedPreconditionError(absl::StrCat(
          options.identity_dir, " holds the identity of agent ", *name, ", not ", options.name,
          ": start with --name=", *name, ", or use another --work_dir to enrol a new agent"));
    }
    security.ca_pem = *std::move(ca);
    security.key_pem = *std::move(key);
    security.certificate_pem = *std::move(certificate);
    return security;
  }
  if (!absl::IsNotFound(certificate.status())) return certificate.status();

  if (options.enrol_token_file.empty() || options.ca_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "agent ", options.name, " is not enrolled (no ", cert_path,
        "): start it once with --enrol_token_file=FILE (a token from `dockyard agents enrol`) and "
        "--ca_file=<the controller's data_dir>/tls/ca.crt"));
  }
  auto token = ReadFirstLine(options.enrol_token_file);
  if (!token.ok()) return token.status();
  auto ca = ReadFileToString(options.ca_file);
  if (!ca.ok()) return ca.status();
  auto key = NewPrivateKeyPem();
  if (!key.ok()) return key.status();
  auto csr = NewCsrPem(*key, options.name);
  if (!csr.ok()) return csr.status();

  // Only the CA so far: this call is the one an agent makes without a certificate.
  ClientSecurity enrolling;
  enrolling.ca_pem = *ca;
  auto stub = v1::AgentService::NewStub(ControllerChannel(options.controller, ChannelCredentials(enrolling)));
  v1::EnrolRequest request;
  request.set_token(*token);
  request.set_name(options.name);
  request.set_csr_pem(*csr);
  v1::EnrolResponse response;
  absl::Status enrolled = Retrier().Run(
      [&](grpc::ClientContext& context) { return stub->Enrol(&context, request, &response); });
  if (!enrolled.ok()) {
    return absl::Status(enrolled.code(), absl::StrCat("enrolling agent ", options.name, " at ", options.controller,
                                                      ": ", std::string(ExplainConnectFailure(enrolled, enrolling).message())));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.identity_dir, ec);
  std::filesystem::permissions(options.identity_dir, std::filesystem::perms(0700), ec);
  // The key first: a crash in between leaves no certificate, so the next start
  // enrols again instead of presenting a certificate without its key.
  if (absl::Status st = WriteFileAtomically(key_path, *key, 0600); !st.ok()) return st;
  if (absl::Status st = WriteFileAtomically(ca_path, response.ca_pem(), 0644); !st.ok()) return st;
  if (absl::Status st = WriteFileAtomically(cert_path, response.certificate_pem(), 0644); !st.ok()) return st;
  Logger("agent")->info("agent={} enrolled; identity kept in {}", options.name, options.identity_dir);
  security.ca_pem = response.ca_pem();
  security.key_pem = *std::move(key);
  security.certificate_pem = response.certificate_pem();
  return security;
}

}  // namespace dockyard
