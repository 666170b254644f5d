// An agent's identity: the client certificate (and key, 0600) it keeps in
// <work_dir>/identity, obtained once by enrolling — presenting a one-time token
// and a CSR to the controller over TLS — and presented on every connection after.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/client_security.h"

namespace dockyard {

struct EnrolmentOptions {
  std::string controller;        // host:port
  std::string name;              // the agent name the certificate carries
  std::string identity_dir;      // <work_dir>/identity
  std::string ca_file;           // the controller's ca.crt (needed to enrol)
  std::string enrol_token_file;  // the token from `dockyard agents enrol`
};

// The agent's TLS credentials: from identity_dir when it is enrolled already
// (the stored certificate must name `name`), else by enrolling. Errors say what
// to do (which flag is missing, which name the stored identity has).
absl::StatusOr<ClientSecurity> LoadOrEnrol(const EnrolmentOptions& options);

}  // namespace dockyard
