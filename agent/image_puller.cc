#include "agent/image_puller.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

using json = nlohmann::json;

// Docker's own auth files key Docker Hub by its old index URL.
constexpr char kDockerHubKey[] = "https://index.docker.io/v1/";

// A registry key of an auth file as a bare host[:port] ("https://h/v2/" -> "h").
std::string HostOfKey(std::string key) {
  if (key == kDockerHubKey) return "docker.io";
  if (const size_t scheme = key.find("://"); scheme != std::string::npos) key.erase(0, scheme + 3);
  if (const size_t slash = key.find('/'); slash != std::string::npos) key.erase(slash);
  return key;
}

const char* PolicyName(v1::PullPolicy policy) {
  switch (policy) {
    case v1::PULL_ALWAYS:
      return "always";
    case v1::PULL_NEVER:
      return "never";
    default:
      return "if-not-present";
  }
}

}  // namespace

std::string RegistryOf(std::string_view image) {
  const size_t slash = image.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  const std::string_view first = image.substr(0, slash);
  if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos || first == "localhost") {
    return std::string(first);
  }
  return "docker.io";
}

absl::StatusOr<std::map<std::string, RegistryAuth>> ReadRegistryAuthFile(const std::string& path) {
  std::map<std::string, RegistryAuth> out;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return out;
    return absl::FailedPreconditionError(absl::StrCat("registry auth file ", path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "registry auth file %s has mode %04o: others may read its passwords, so the agent does not use it "
        "(chmod 600 %s)",
        path, st.st_mode & 07777, path));
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::FailedPreconditionError(absl::StrCat("registry auth file ", path, ": cannot read it"));
  const auto malformed = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat("registry auth file ", path, ": ", why,
                                                      R"( (expected {"auths": {"host:port": {"auth": base64("user:password")}}}))"));
  };
  const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return malformed("not JSON");
  if (!j.is_object() || !j.contains("auths") || !j["auths"].is_object()) return malformed("no \"auths\" object");
  for (const auto& [key, entry] : j["auths"].items()) {
    if (!entry.is_object()) return malformed(absl::StrCat("the entry for ", key, " is not an object"));
    const std::string host = HostOfKey(key);
    if (auto auth = entry.find("auth"); auth != entry.end() && auth->is_string()) {
      std::string decoded;
      if (!absl::Base64Unescape(auth->get<std::string>(), &decoded)) {
        return malformed(absl::StrCat("the \"auth\" of ", key, " is not base64"));
      }
      auto login = ParseRegistryLogin(decoded, host);
      if (!login.ok()) return malformed(absl::StrCat("the \"auth\" of ", key, " is not base64 of user:password"));
      out[host] = *std::move(login);
      continue;
    }
    auto user = entry.find("username");
    auto password = entry.find("password");
    if (user == entry.end() || password == entry.end() || !user->is_string() || !password->is_string()) {
      return malformed(absl::StrCat("the entry for ", key, " has neither \"auth\" nor \"username\" and \"password\""));
    }
    out[host] = RegistryAuth{user->get<std::string>(), password->get<std::string>(), host};
  }
  return out;
}

absl::StatusOr<RegistryAuth> ParseRegistryLogin(const std::string& value, const std::string& server) {
  const size_t colon = value.find(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError("a registry login must read username:password");
  }
  return RegistryAuth{value.substr(0, colon), value.substr(colon + 1), server};
}

ImagePuller::ImagePuller(DockerClient* docker, std::string auth_file, std::string agent_name)
    : docker_(docker), auth_file_(std::move(auth_file)), agent_name_(std::move(agent_name)) {}

absl::StatusOr<std::string> ImagePuller::Ensure(const std::string& image, v1::PullPolicy policy,
                                                const RegistryAuth* login,
                                                const std::function<void(std::string_view)>& log) {
  if (policy != v1::PULL_ALWAYS) {
    absl::StatusOr<std::string> id = docker_->ImageId(image);
    if (id.ok() || !absl::IsNotFound(id.status())) return id;
    if (policy == v1::PULL_NEVER) {
      return absl::FailedPreconditionError(absl::StrCat("image ", image, " is not on agent ", agent_name_,
                                                        " and the stage says pull: never (load or build it there, "
                                                        "or let the agent pull it)"));
    }
  }
  const std::string registry = RegistryOf(image);
  std::optional<RegistryAuth> auth;
  std::string whose = "no login";
  if (login != nullptr && login->server == registry) {
    auth = *login;
    whose = absl::StrCat("the stage's pull secret (user ", login->username, ")");
  } else {
    ASSIGN_OR_RETURN(auto logins, ReadRegistryAuthFile(auth_file_));
    if (auto it = logins.find(registry); it != logins.end()) {
      auth = it->second;
      whose = absl::StrCat("the login in ", auth_file_, " (user ", it->second.username, ")");
    }
  }
  log(absl::StrCat("image ", image, ": pulling from ", registry, " with ", whose, " (pull: ", PolicyName(policy), ")"));
  const absl::Time began = absl::Now();
  absl::Status pulled =
      docker_->PullImage(image, auth ? &*auth : nullptr, [&](std::string_view line) { log("pull: " + std::string(line)); });
  if (!pulled.ok()) {
    const bool denied = absl::StrContains(pulled.message(), "unauthorized") ||
                        absl::StrContains(pulled.message(), "no basic auth credentials") ||
                        absl::StrContains(pulled.message(), "denied");
    return absl::FailedPreconditionError(absl::StrCat(
        pulled.message(),
        denied && !auth ? absl::StrCat(" — the registry wants a login: name a controller secret holding "
                                       "username:password in the stage's pull_secret, or add ", registry, " to ",
                                       auth_file_)
                        : ""));
  }
  log(absl::StrCat("image ", image, ": pulled in ", absl::FormatDuration(absl::Trunc(absl::Now() - began, absl::Milliseconds(100)))));
  return docker_->ImageId(image);
}

}  // namespace dockyard
