// The HTTP side of the Docker Engine client: one request over the engine's unix
// socket with libcurl (Perform), and the helpers that turn replies into statuses
// and JSON. Internal to agent/docker_engine_client*.
#pragma once

#include <curl/curl.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace dockyard::docker_http {

using json = nlohmann::json;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

struct Call {
  const char* method = "GET";
  std::string target;                    // below /vX.Y, e.g. "/containers/json?all=1"
  std::optional<std::string> json_body;  // sent with Content-Type: application/json
  bool long_running = false;             // no total timeout
  long timeout_ms = 0;                   // > 0: this total timeout instead (DEADLINE_EXCEEDED)
  // When set, a 2xx body goes here as it arrives instead of being kept in the reply;
  // a non-OK status aborts the transfer and becomes the call's result.
  std::function<absl::Status(std::string_view)> stream_body;
  std::FILE* upload = nullptr;  // PUT body, `upload_size` bytes
  std::vector<std::string> headers;  // more request headers ("Name: value"); never logged
  // Called once the engine's answer headers have all arrived (before any body).
  std::function<void()> on_headers;
  curl_off_t upload_size = 0;
};

struct Reply {
  long status = 0;
  std::string body;
};

// URL-escapes a path or query part; image references keep their ':' and '/'.
std::string Escape(std::string_view s);
std::string EscapeImageRef(std::string_view s);
// The engine's own message from an error reply (its JSON "message", or the body).
std::string EngineMessage(const Reply& r);
// NOT_FOUND for 404, INTERNAL otherwise, saying `what` failed and why.
absl::Status EngineError(const Reply& r, absl::string_view what);
absl::StatusOr<json> ParseJson(const Reply& r, absl::string_view what);
std::string DumpJson(const json& j);
// A `filters` query value selecting `label` ("key" or "key=value").
std::string LabelFilter(const std::string& label);
std::map<std::string, std::string> StringMap(const json& j);
// One HTTP exchange with the engine on a fresh curl handle. Returns the reply whatever
// its HTTP status; transport failures and stream_body errors become the status.
absl::StatusOr<Reply> Perform(const std::string& socket_path, const std::string& api_version, const Call& call);
absl::Status FileError(absl::string_view op, const std::string& path, int err);

// nlohmann::json reports type mismatches by throwing; no exception may leave this file.
template <typename F>
auto CatchJson(absl::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const json::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": unexpected JSON from docker engine: ",
                                            e.what()));
  }
}

}  // namespace dockyard::docker_http
