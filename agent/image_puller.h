// Images a stage runs that come from a registry: made present as the stage's pull
// policy says, with the login from the stage's pull secret or from the agent's
// registry auth file. Passwords never reach a log, an error or the agent's disk.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/docker_client.h"
#include "dockyard/v1/pipeline.pb.h"

namespace dockyard {

// The registry an image reference names, as Docker reads it: the first part when it
// looks like a host ("127.0.0.1:5000/team/app", "registry.example.com/app",
// "localhost/app"), else Docker Hub ("docker.io").
std::string RegistryOf(std::string_view image);

// Logins by registry from a Docker-style auth file: {"auths": {"HOST": {"auth":
// base64("user:password")}}} or {"username", "password"} in place of "auth" (a
// ~/.docker/config.json without credential helpers works). No file: no logins.
// FAILED_PRECONDITION when others may read or write the file, or it is malformed
// (the message names the file, never a value in it).
absl::StatusOr<std::map<std::string, RegistryAuth>> ReadRegistryAuthFile(const std::string& path);

// "username:password" (a pull secret's value) as a login for `server`.
// INVALID_ARGUMENT, quoting nothing of it, when there is no ':'.
absl::StatusOr<RegistryAuth> ParseRegistryLogin(const std::string& value, const std::string& server);

class ImagePuller {
 public:
  // `auth_file` is read at every pull, so changing it needs no restart.
  ImagePuller(DockerClient* docker, std::string auth_file, std::string agent_name);

  // Makes `image` present on the engine according to `policy` and returns its id there.
  // `login` (may be null) is used when its server is the image's registry; otherwise
  // the auth file's login for that registry, if any. Progress goes to `log` a line at a
  // time. FAILED_PRECONDITION naming the image for `never` with the image absent, for a
  // failed pull (with the registry's reason) and for an unusable auth file.
  absl::StatusOr<std::string> Ensure(const std::string& image, v1::PullPolicy policy, const RegistryAuth* login,
                                     const std::function<void(std::string_view)>& log);

 private:
  DockerClient* docker_;
  const std::string auth_file_;
  const std::string agent_name_;
};

}  // namespace dockyard
