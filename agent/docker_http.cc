#include "agent/docker_http.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/curl_util.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace dockyard::docker_http {
namespace {

constexpr long kConnectTimeoutMs = 5'000;
constexpr long kShortCallTimeoutMs = 120'000;
// Bodies we keep in memory are JSON answers; anything bigger means something is wrong,
// and a streamed endpoint's error body is only needed for its message.
constexpr size_t kMaxBufferedBody = 64 << 20;
constexpr size_t kMaxErrorBody = 64 << 10;

}  // namespace

// Percent-encodes one path segment or query value (container ids, volume names,
// paths inside containers).
std::string Escape(std::string_view s) { return PercentEncode(s); }

// Image references go into the path raw where they are made of '/', ':' and '@'
// (the engine routes /images/{name:.*}/json), but anything that would change the
// URL's meaning ('?', '#', '%', spaces) is still encoded.
std::string EscapeImageRef(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '/' || c == ':' || c == '@') {
      out.push_back(c);
    } else {
      out += Escape(std::string_view(&c, 1));
    }
  }
  return out;
}

namespace {

struct Transfer {
  CURL* curl = nullptr;
  const Call* call = nullptr;
  Reply reply;
  absl::Status stream_status;
  bool streamed_any = false;
};

size_t OnWrite(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->call->stream_body && code >= 200 && code < 300) {
    if (n == 0) return 0;
    t->streamed_any = true;
    t->stream_status = t->call->stream_body(std::string_view(data, n));
    return t->stream_status.ok() ? n : CURL_WRITEFUNC_ERROR;
  }
  const size_t cap = t->call->stream_body ? kMaxErrorBody : kMaxBufferedBody;
  if (t->reply.body.size() + n > cap) {
    t->stream_status = absl::InternalError(
        absl::StrCat("docker engine answer to ", t->call->target, " exceeds ", cap, " bytes"));
    return CURL_WRITEFUNC_ERROR;
  }
  t->reply.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nitems;
  // The blank line that ends the headers (of the final answer, not of a "100 Continue").
  if ((n == 2 && data[0] == '\r' && data[1] == '\n') || (n == 1 && data[0] == '\n')) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && t->call->on_headers) t->call->on_headers();
  }
  return n;
}

size_t OnRead(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* f = static_cast<std::FILE*>(userdata);
  const size_t n = std::fread(buffer, 1, size * nitems, f);
  if (n == 0 && std::ferror(f)) return CURL_READFUNC_ABORT;
  return n;
}

// The engine's error message from a JSON error body ({"message": "..."}), else the body.

}  // namespace

std::string EngineMessage(const Reply& r) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    auto it = j.find("message");
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  std::string body = r.body.substr(0, 512);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body.empty() ? absl::StrCat("HTTP ", r.status) : body;
}

// Maps an unexpected HTTP status to the interface's codes; `what` names the object.
absl::Status EngineError(const Reply& r, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", EngineMessage(r));
  if (r.status == 404) return absl::NotFoundError(msg);
  return absl::InternalError(absl::StrCat(msg, " (HTTP ", r.status, ")"));
}

absl::StatusOr<json> ParseJson(const Reply& r, absl::string_view what) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(what, ": docker engine sent invalid JSON: ", r.body.substr(0, 200)));
  }
  return j;
}

std::string DumpJson(const json& j) {
  // Replacing invalid UTF-8 keeps dump() from throwing on odd bytes in env values.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string LabelFilter(const std::string& label) {
  return Escape(DumpJson(json{{"label", json::array({label})}}));
}

std::map<std::string, std::string> StringMap(const json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

// One HTTP exchange with the engine on a fresh curl handle. Returns the reply whatever
// its HTTP status; transport failures and stream_body errors become the status.
absl::StatusOr<Reply> Perform(const std::string& socket_path, const std::string& api_version,
                              const Call& call) {
  EnsureCurlGlobalInit();
  CurlHandle handle(curl_easy_init());
  if (!handle) return absl::InternalError("curl_easy_init failed");
  CURL* c = handle.get();
  const std::string url = absl::StrCat("http://docker/", api_version, call.target);

  Transfer t;
  t.curl = c;
  t.call = &call;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // signals cannot be aimed at one of many threads
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   call.timeout_ms > 0 ? call.timeout_ms : (call.long_running ? 0L : kShortCallTimeoutMs));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (call.on_headers) {
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  }

  curl_slist* raw_headers = nullptr;
  if (call.json_body) {
    raw_headers = curl_slist_append(raw_headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.json_body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(call.json_body->size()));
  } else if (call.upload != nullptr) {
    // Streamed from the file with a known length, so a large tar never sits in memory.
    raw_headers = curl_slist_append(raw_headers, "Content-Type: application/x-tar");
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, call.upload);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, call.upload_size);
  } else if (std::strcmp(call.method, "POST") == 0) {
    // Without a body curl would send no Content-Length, which some engine versions refuse.
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
  }
  for (const std::string& header : call.headers) raw_headers = curl_slist_append(raw_headers, header.c_str());
  CurlList headers(raw_headers);
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call.method);

  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.reply.status);
  Logger("docker")->debug("{} {} -> HTTP {} ({})", call.method, call.target, t.reply.status,
                          curl_easy_strerror(rc));

  if (!t.stream_status.ok()) return t.stream_status;
  if (rc == CURLE_OK) return std::move(t.reply);

  const std::string detail = absl::StrCat(call.method, " ", call.target, ": ",
                                          errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
  if (rc == CURLE_OPERATION_TIMEDOUT && call.timeout_ms > 0) {
    return absl::DeadlineExceededError(absl::StrCat("docker engine at unix://", socket_path, ": ", detail));
  }
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      return absl::UnavailableError(absl::StrCat("docker engine at unix://", socket_path,
                                                 " is not answering: ", detail));
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
      // Once part of a stream reached the caller, a retry would deliver it twice; only a
      // call that delivered nothing is safe to call retryable.
      if (t.streamed_any) {
        return absl::DataLossError(absl::StrCat("docker engine at unix://", socket_path,
                                                " broke off a stream: ", detail));
      }
      return absl::UnavailableError(absl::StrCat("docker engine at unix://", socket_path,
                                                 " did not answer: ", detail));
    default:
      return absl::InternalError(absl::StrCat("docker engine at unix://", socket_path,
                                              ": request failed: ", detail));
  }
}

absl::Status FileError(absl::string_view op, const std::string& path, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(op, " ", path, ": ", std::strerror(err)));
}

}  // namespace dockyard::docker_http
