// DockerEngineClient's image calls: inspect, build, pull, list and remove.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <set>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/docker_engine_client.h"
#include "agent/docker_http.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

using namespace docker_http;  // NOLINT: the transport this client is built on

// Build and pull answer with a stream of JSON objects, one a line; an
// {"error": reason} object means the operation failed even though the HTTP status
// said 200. Feeds each object to `on_message` and keeps the last error.
class JsonLines {
 public:
  explicit JsonLines(std::function<void(const json&)> on_message) : on_message_(std::move(on_message)) {}

  absl::Status Consume(std::string_view bytes) {
    pending_.append(bytes);
    size_t end;
    while ((end = pending_.find('\n')) != std::string::npos) {
      Line(pending_.substr(0, end));
      pending_.erase(0, end + 1);
    }
    return absl::OkStatus();
  }
  // The error the engine reported, if any (call after the transfer ended).
  const std::string& Finish() {
    if (!pending_.empty()) Line(std::exchange(pending_, ""));
    return error_;
  }

 private:
  void Line(const std::string& line) {
    json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!message.is_object()) return;
    if (auto e = message.find("error"); e != message.end() && e->is_string()) error_ = e->get<std::string>();
    on_message_(message);
  }

  std::function<void(const json&)> on_message_;
  std::string pending_;
  std::string error_;
};

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The X-Registry-Auth header: the login as JSON in URL-safe base64.
absl::StatusOr<std::vector<std::string>> AuthHeaders(const RegistryAuth* auth) {
  if (auth == nullptr) return std::vector<std::string>{};
  return CatchJson("registry login", [&]() -> absl::StatusOr<std::vector<std::string>> {
    const std::string body = DumpJson(
        json{{"username", auth->username}, {"password", auth->password}, {"serveraddress", auth->server}});
    // The engine decodes it with padding (Go's base64.URLEncoding): unpadded, it
    // quietly pulls with no login at all.
    std::string encoded = absl::WebSafeBase64Escape(body);
    encoded.append((4 - encoded.size() % 4) % 4, '=');
    return std::vector<std::string>{absl::StrCat("X-Registry-Auth: ", encoded)};
  });
}

// Pull progress as log lines: each layer's step once ("Downloading" and the
// like would otherwise repeat for every few kilobytes), other news as it comes.
std::function<void(const json&)> ProgressLines(const std::function<void(std::string_view)>& progress) {
  auto seen = std::make_shared<std::set<std::string>>();
  return [progress, seen](const json& message) {
    const std::string status = StringField(message, "status");
    if (status.empty()) return;
    const std::string id = StringField(message, "id");
    const std::string line = id.empty() ? status : absl::StrCat(id, ": ", status);
    if (!id.empty() && !seen->insert(line).second) return;
    progress(line);
  };
}

// Splits a reference into the engine's fromImage and tag (a tag or a digest):
// without either the engine would pull every tag of the repository.
std::pair<std::string, std::string> RepositoryAndTag(const std::string& image) {
  if (const size_t at = image.find('@'); at != std::string::npos) return {image.substr(0, at), image.substr(at + 1)};
  const size_t slash = image.rfind('/');
  const size_t colon = image.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {image.substr(0, colon), image.substr(colon + 1)};
  }
  return {image, "latest"};
}

}  // namespace

absl::StatusOr<std::string> DockerEngineClient::ImageId(const std::string& image) {
  ASSIGN_OR_RETURN(
      Reply r, Perform(socket_path_, api_version_,
                       {.target = absl::StrCat("/images/", EscapeImageRef(image), "/json")}));
  if (r.status == 404) return absl::NotFoundError(absl::StrCat("no image \"", image, "\" on this agent"));
  if (r.status != 200) return EngineError(r, absl::StrCat("inspect image \"", image, "\""));
  return CatchJson("inspect image", [&]() -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "inspect image"));
    if (!j.is_object() || !j.contains("Id") || !j["Id"].is_string()) {
      return absl::InternalError(absl::StrCat("inspect image: no Id in answer: ", r.body));
    }
    return j["Id"].get<std::string>();
  });
}

absl::Status DockerEngineClient::BuildImage(const ImageBuildSpec& spec,
                                            const std::function<void(std::string_view line)>& progress) {
  File f(std::fopen(spec.context_tar.c_str(), "rb"));
  if (!f) return FileError("open build context", spec.context_tar, errno);
  struct stat st {};
  if (fstat(fileno(f.get()), &st) != 0) return FileError("stat build context", spec.context_tar, errno);
  std::string target = absl::StrCat("/build?t=", Escape(spec.tag), "&dockerfile=", Escape(spec.dockerfile),
                                    "&networkmode=", Escape(spec.network_mode), "&rm=1&forcerm=1&pull=0");
  ASSIGN_OR_RETURN(std::string extra, CatchJson("build", [&]() -> absl::StatusOr<std::string> {
    return absl::StrCat("&buildargs=", Escape(DumpJson(json(spec.args))), "&labels=", Escape(DumpJson(json(spec.labels))));
  }));
  absl::StrAppend(&target, extra);
  if (!spec.target.empty()) absl::StrAppend(&target, "&target=", Escape(spec.target));
  // Output comes as {"stream": text} objects, several lines or part of one each.
  JsonLines lines([&](const json& message) {
    const std::string output = StringField(message, "stream");
    for (absl::string_view part : absl::StrSplit(output, '\n', absl::SkipWhitespace())) {
      part = absl::StripTrailingAsciiWhitespace(part);
      progress(std::string_view(part.data(), part.size()));
    }
  });
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = std::move(target),
                                     .long_running = true,
                                     .stream_body = [&](std::string_view bytes) { return lines.Consume(bytes); },
                                     .upload = f.get(),
                                     .upload_size = static_cast<curl_off_t>(st.st_size)}));
  if (r.status != 200) return EngineError(r, absl::StrCat("build image ", spec.tag));
  if (const std::string& error = lines.Finish(); !error.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the image build failed: ", error));
  }
  return absl::OkStatus();
}

absl::Status DockerEngineClient::PullImage(const std::string& image, const RegistryAuth* auth,
                                           const std::function<void(std::string_view line)>& progress) {
  ASSIGN_OR_RETURN(std::vector<std::string> headers, AuthHeaders(auth));
  const auto [repository, tag] = RepositoryAndTag(image);
  JsonLines lines(ProgressLines(progress));
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = absl::StrCat("/images/create?fromImage=", EscapeImageRef(repository),
                                                            "&tag=", Escape(tag)),
                                     .long_running = true,
                                     .stream_body = [&](std::string_view bytes) { return lines.Consume(bytes); },
                                     .headers = std::move(headers)}));
  if (r.status != 200) {
    return absl::FailedPreconditionError(absl::StrCat("pulling ", image, " failed: ", EngineMessage(r)));
  }
  if (const std::string& error = lines.Finish(); !error.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("pulling ", image, " failed: ", error));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ImageSummary>> DockerEngineClient::ListImages(const std::string& label) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/images/json?filters=", LabelFilter(label))}));
  if (r.status != 200) return EngineError(r, absl::StrCat("list images with label ", label));
  return CatchJson("list images", [&]() -> absl::StatusOr<std::vector<ImageSummary>> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "list images"));
    if (!j.is_array()) return absl::InternalError("list images: answer is not an array");
    std::vector<ImageSummary> out;
    for (const auto& image : j) {
      if (!image.is_object()) continue;
      ImageSummary s;
      s.id = StringField(image, "Id");
      if (auto it = image.find("Size"); it != image.end() && it->is_number_integer()) s.size = it->get<int64_t>();
      if (auto it = image.find("RepoTags"); it != image.end() && it->is_array()) {
        for (const auto& t : *it) {
          if (t.is_string() && t.get<std::string>() != "<none>:<none>") s.tags.push_back(t.get<std::string>());
        }
      }
      if (auto it = image.find("Labels"); it != image.end()) s.labels = StringMap(*it);
      if (!s.id.empty()) out.push_back(std::move(s));
    }
    return out;
  });
}

absl::Status DockerEngineClient::RemoveImage(const std::string& image) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "DELETE", .target = absl::StrCat("/images/", EscapeImageRef(image))}));
  if (r.status == 200 || r.status == 404) return absl::OkStatus();
  if (r.status == 409) {
    return absl::FailedPreconditionError(absl::StrCat("image ", image, " is in use: ", EngineMessage(r)));
  }
  return EngineError(r, absl::StrCat("remove image ", image));
}

}  // namespace dockyard
