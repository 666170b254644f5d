#include "agent/docker_engine_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/docker_log_decoder.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace dockyard {

absl::StatusOr<std::string> DockerSocketPath(const std::string& docker_host) {
  constexpr std::string_view kUnix = "unix://";
  std::string_view host = docker_host;
  if (host.starts_with(kUnix)) host.remove_prefix(kUnix.size());
  if (host.empty() || host[0] != '/') {
    return absl::InvalidArgumentError(
        "Docker host \"" + docker_host + "\": the agent needs a local engine, as unix:///path/to/docker.sock");
  }
  return std::string(host);
}
namespace {

using json = nlohmann::json;

constexpr long kConnectTimeoutMs = 5'000;
constexpr long kShortCallTimeoutMs = 120'000;
// Bodies we keep in memory are JSON answers; anything bigger means something is wrong,
// and a streamed endpoint's error body is only needed for its message.
constexpr size_t kMaxBufferedBody = 64 << 20;
constexpr size_t kMaxErrorBody = 64 << 10;

void EnsureCurlGlobalInit() {
  // curl_global_init is not thread-safe; a function-local static runs it exactly once.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)rc;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlDeleter>;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Percent-encodes one path segment or query value (container ids, volume names,
// paths inside containers).
std::string Escape(std::string_view s) {
  std::string out;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

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

struct Call {
  const char* method = "GET";
  std::string target;                    // below /vX.Y, e.g. "/containers/json?all=1"
  std::optional<std::string> json_body;  // sent with Content-Type: application/json
  bool long_running = false;             // no total timeout
  // When set, a 2xx body goes here as it arrives instead of being kept in the reply;
  // a non-OK status aborts the transfer and becomes the call's result.
  std::function<absl::Status(std::string_view)> stream_body;
  std::FILE* upload = nullptr;  // PUT body, `upload_size` bytes
  curl_off_t upload_size = 0;
};

struct Reply {
  long status = 0;
  std::string body;
};

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

size_t OnRead(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* f = static_cast<std::FILE*>(userdata);
  const size_t n = std::fread(buffer, 1, size * nitems, f);
  if (n == 0 && std::ferror(f)) return CURL_READFUNC_ABORT;
  return n;
}

// The engine's error message from a JSON error body ({"message": "..."}), else the body.
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
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, call.long_running ? 0L : kShortCallTimeoutMs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

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

}  // namespace

DockerEngineClient::DockerEngineClient(std::string socket_path, std::string api_version)
    : socket_path_(std::move(socket_path)), api_version_(std::move(api_version)) {}

absl::Status DockerEngineClient::Ping() {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_, {.target = "/_ping"}));
  if (r.status != 200) return EngineError(r, "ping");
  return absl::OkStatus();
}

absl::StatusOr<bool> DockerEngineClient::ImageExists(const std::string& image) {
  ASSIGN_OR_RETURN(
      Reply r, Perform(socket_path_, api_version_,
                       {.target = absl::StrCat("/images/", EscapeImageRef(image), "/json")}));
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return EngineError(r, absl::StrCat("inspect image \"", image, "\""));
}

absl::StatusOr<std::string> DockerEngineClient::CreateContainer(const ContainerSpec& spec) {
  ASSIGN_OR_RETURN(std::string body, CatchJson("create container", [&]() -> absl::StatusOr<std::string> {
    json j = {
        {"Image", spec.image},
        {"Env", spec.env},
        {"Labels", spec.labels},
        {"AttachStdin", false},
        {"AttachStdout", true},
        {"AttachStderr", true},
        {"OpenStdin", false},
        {"Tty", false},  // keeps stdout and stderr apart, as multiplexed log frames
        {"HostConfig", {{"NetworkMode", spec.network_mode}, {"Binds", spec.binds}, {"Privileged", false},
                        {"CapDrop", {"ALL"}}, {"CapAdd", spec.cap_add}}},
    };
    json& host = j["HostConfig"];
    if (spec.no_new_privileges) host["SecurityOpt"] = {"no-new-privileges"};
    if (spec.memory_bytes > 0) {
      host["Memory"] = spec.memory_bytes;
      host["MemorySwap"] = spec.memory_bytes;
    }
    if (spec.pids_limit > 0) host["PidsLimit"] = spec.pids_limit;
    if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
    // Left out rather than empty, so the image's own CMD and WORKDIR still apply.
    if (!spec.cmd.empty()) j["Cmd"] = spec.cmd;
    if (!spec.workdir.empty()) j["WorkingDir"] = spec.workdir;
    return DumpJson(j);
  }));

  std::string target = "/containers/create";
  if (!spec.name.empty()) absl::StrAppend(&target, "?name=", Escape(spec.name));
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = std::move(target),
                                     .json_body = std::move(body)}));
  if (r.status == 404) {
    // Create's only 404 is a missing image: the engine wants a pull, Dockyard never does.
    return absl::NotFoundError(absl::StrCat(
        "image \"", spec.image,
        "\" not found on this agent (Dockyard never pulls; build or load it here): ",
        EngineMessage(r)));
  }
  if (r.status != 201) {
    return EngineError(r, absl::StrCat("create container from image \"", spec.image, "\""));
  }
  return CatchJson("create container", [&]() -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "create container"));
    if (!j.is_object() || !j.contains("Id") || !j["Id"].is_string()) {
      return absl::InternalError(absl::StrCat("create container: no Id in answer: ", r.body));
    }
    std::string id = j["Id"].get<std::string>();
    if (auto w = j.find("Warnings"); w != j.end() && w->is_array()) {
      for (const auto& warning : *w) {
        if (warning.is_string()) {
          Logger("docker")->warn("container {} (image {}): {}", id, spec.image,
                                 warning.get<std::string>());
        }
      }
    }
    Logger("docker")->debug("created container {} from image {}", id, spec.image);
    return id;
  });
}

absl::Status DockerEngineClient::PutArchive(const std::string& id, const std::string& dest_dir,
                                            const std::string& tar_path) {
  File f(std::fopen(tar_path.c_str(), "rb"));
  if (!f) return FileError("open tar", tar_path, errno);
  struct stat st {};
  if (fstat(fileno(f.get()), &st) != 0) return FileError("stat tar", tar_path, errno);
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "PUT",
                                     .target = absl::StrCat("/containers/", Escape(id),
                                                            "/archive?path=", Escape(dest_dir)),
                                     .long_running = true,
                                     .upload = f.get(),
                                     .upload_size = static_cast<curl_off_t>(st.st_size)}));
  if (r.status != 200) {
    return EngineError(r, absl::StrCat("put archive into ", dest_dir, " of container ", id));
  }
  return absl::OkStatus();
}

absl::Status DockerEngineClient::GetArchive(const std::string& id, const std::string& path,
                                            const std::string& out_tar_path, int64_t max_bytes) {
  File out(std::fopen(out_tar_path.c_str(), "wb"));
  if (!out) return FileError("create", out_tar_path, errno);
  int64_t written = 0;
  auto write = [&](std::string_view bytes) -> absl::Status {
    written += static_cast<int64_t>(bytes.size());
    if (max_bytes > 0 && written > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("the files under ", path, " are more than ", max_bytes,
                                                       " bytes, the agent's limit (--max_artifact_bytes)"));
    }
    if (std::fwrite(bytes.data(), 1, bytes.size(), out.get()) != bytes.size()) {
      return FileError("write", out_tar_path, errno);
    }
    return absl::OkStatus();
  };
  absl::StatusOr<Reply> r =
      Perform(socket_path_, api_version_,
              {.target = absl::StrCat("/containers/", Escape(id), "/archive?path=", Escape(path)),
               .long_running = true,
               .stream_body = write});
  absl::Status result;
  if (!r.ok()) {
    result = r.status();
  } else if (r->status != 200) {
    result = EngineError(*r, absl::StrCat("get archive of ", path, " from container ", id));
  }
  if (std::fclose(out.release()) != 0 && result.ok()) {
    result = FileError("close", out_tar_path, errno);
  }
  // A half-written tar must not pass for a result.
  if (!result.ok()) std::remove(out_tar_path.c_str());
  return result;
}

absl::Status DockerEngineClient::StartContainer(const std::string& id) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = absl::StrCat("/containers/", Escape(id), "/start")}));
  // 304: already running. Starting an *exited* container is a 204 and runs it again.
  if (r.status == 204 || r.status == 304) return absl::OkStatus();
  return EngineError(r, absl::StrCat("start container ", id));
}

absl::Status DockerEngineClient::FollowLogs(const std::string& id, const OutputSink& sink) {
  // The engine sometimes ends a follow before the container's last output (seen
  // under load when the container exits). So: follow; then read the log once more
  // without following and deliver only what lies beyond what was delivered, per
  // stream; while the container still runs, follow again from there.
  int64_t delivered[3] = {0, 0, 0};
  for (int round = 0;; ++round) {
    bool running = true;  // the first round always follows
    if (round > 0) {
      ASSIGN_OR_RETURN(running, Running(id));
    }
    int64_t seen[3] = {0, 0, 0};
    DockerLogDecoder decoder([&](OutputStream stream, std::string_view data) {
      const int s = static_cast<int>(stream);
      const int64_t end = seen[s] + static_cast<int64_t>(data.size());
      if (end > delivered[s]) {
        data.remove_prefix(static_cast<size_t>(std::max<int64_t>(0, delivered[s] - seen[s])));
        sink(stream, data);
        delivered[s] = end;
      }
      seen[s] = end;
    });
    const bool follow = running;
    ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                      {.target = absl::StrCat("/containers/", Escape(id), "/logs?follow=",
                                                              follow ? "1" : "0", "&stdout=1&stderr=1"),
                                       .long_running = true,
                                       .stream_body = [&](std::string_view bytes) { return decoder.Feed(bytes); }}));
    if (r.status != 200) return EngineError(r, absl::StrCat("logs of container ", id));
    RETURN_IF_ERROR(decoder.Finish());
    if (!follow) return absl::OkStatus();  // the whole log of an exited container: complete
    if (round > 1000) return absl::InternalError(absl::StrCat("logs of container ", id, " keep breaking off"));
  }
}

absl::StatusOr<bool> DockerEngineClient::Running(const std::string& id) {
  ASSIGN_OR_RETURN(json state, State(id));
  return state.value("Running", false);
}

absl::StatusOr<nlohmann::json> DockerEngineClient::State(const std::string& id) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/containers/", Escape(id), "/json")}));
  if (r.status == 404) return absl::NotFoundError(absl::StrCat("no container ", id));
  if (r.status != 200) return EngineError(r, absl::StrCat("inspect container ", id));
  return CatchJson("inspect", [&]() -> absl::StatusOr<json> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "inspect"));
    return j.value("State", json::object());
  });
}

absl::StatusOr<int64_t> DockerEngineClient::WaitContainer(const std::string& id) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = absl::StrCat("/containers/", Escape(id), "/wait"),
                                     .long_running = true}));
  if (r.status != 200) return EngineError(r, absl::StrCat("wait for container ", id));
  return CatchJson("wait", [&]() -> absl::StatusOr<int64_t> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "wait"));
    if (!j.is_object()) return absl::InternalError(absl::StrCat("wait: odd answer: ", r.body));
    if (auto e = j.find("Error"); e != j.end() && e->is_object()) {
      auto m = e->find("Message");
      if (m != e->end() && m->is_string() && !m->get<std::string>().empty()) {
        return absl::InternalError(
            absl::StrCat("wait for container ", id, ": ", m->get<std::string>()));
      }
    }
    auto code = j.find("StatusCode");
    if (code == j.end() || !code->is_number_integer()) {
      return absl::InternalError(absl::StrCat("wait: no StatusCode in answer: ", r.body));
    }
    return code->get<int64_t>();
  });
}

absl::StatusOr<bool> DockerEngineClient::OomKilled(const std::string& id) {
  ASSIGN_OR_RETURN(json state, State(id));
  return state.value("OOMKilled", false);
}

absl::StatusOr<std::vector<std::string>> DockerEngineClient::ContainerEnv(const std::string& id) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/containers/", Escape(id), "/json")}));
  if (r.status == 404) return absl::NotFoundError(absl::StrCat("no container ", id));
  if (r.status != 200) return EngineError(r, absl::StrCat("inspect container ", id));
  // Parsed here, not by ParseJson: its error would quote the body, secrets and all.
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InternalError(absl::StrCat("inspect container ", id, ": invalid JSON"));
  std::vector<std::string> env;
  const json config = j.value("Config", json::object());
  const json list = config.is_object() ? config.value("Env", json::array()) : json::array();
  for (const json& entry : list.is_array() ? list : json::array()) {
    if (entry.is_string()) env.push_back(entry.get<std::string>());
  }
  return env;
}

absl::Status DockerEngineClient::KillContainer(const std::string& id) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = absl::StrCat("/containers/", Escape(id),
                                                            "/kill?signal=SIGKILL")}));
  // 409: not running, which is all a kill wants.
  if (r.status == 204 || r.status == 409) return absl::OkStatus();
  return EngineError(r, absl::StrCat("kill container ", id));
}

absl::Status DockerEngineClient::RemoveContainer(const std::string& id) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "DELETE",
                                     .target = absl::StrCat("/containers/", Escape(id),
                                                            "?force=1&v=1")}));
  if (r.status == 204 || r.status == 404) return absl::OkStatus();
  return EngineError(r, absl::StrCat("remove container ", id));
}

absl::StatusOr<std::vector<ContainerSummary>> DockerEngineClient::ListContainers(
    const std::string& label) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/containers/json?all=1&filters=",
                                                            LabelFilter(label))}));
  if (r.status != 200) return EngineError(r, absl::StrCat("list containers with label ", label));
  return CatchJson("list containers", [&]() -> absl::StatusOr<std::vector<ContainerSummary>> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "list containers"));
    if (!j.is_array()) return absl::InternalError("list containers: answer is not an array");
    std::vector<ContainerSummary> out;
    for (const auto& c : j) {
      if (!c.is_object()) continue;
      ContainerSummary s;
      if (auto it = c.find("Id"); it != c.end() && it->is_string()) s.id = it->get<std::string>();
      if (auto it = c.find("State"); it != c.end() && it->is_string()) {
        s.state = it->get<std::string>();
      }
      if (auto it = c.find("Labels"); it != c.end()) s.labels = StringMap(*it);
      if (!s.id.empty()) out.push_back(std::move(s));
    }
    return out;
  });
}

absl::Status DockerEngineClient::CreateVolume(const std::string& name,
                                              const std::map<std::string, std::string>& labels) {
  ASSIGN_OR_RETURN(std::string body, CatchJson("create volume", [&]() -> absl::StatusOr<std::string> {
    return DumpJson(json{{"Name", name}, {"Driver", "local"}, {"Labels", labels}});
  }));
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = "/volumes/create",
                                     .json_body = std::move(body)}));
  // An existing volume of the same name is a 201 as well.
  if (r.status == 201 || r.status == 200) return absl::OkStatus();
  return EngineError(r, absl::StrCat("create volume ", name));
}

absl::Status DockerEngineClient::RemoveVolume(const std::string& name) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "DELETE",
                                     .target = absl::StrCat("/volumes/", Escape(name))}));
  if (r.status == 204 || r.status == 404) return absl::OkStatus();
  if (r.status == 409) {
    return absl::FailedPreconditionError(
        absl::StrCat("remove volume ", name, ": ", EngineMessage(r)));
  }
  return EngineError(r, absl::StrCat("remove volume ", name));
}

absl::StatusOr<bool> DockerEngineClient::VolumeExists(const std::string& name) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_, {.target = absl::StrCat("/volumes/", Escape(name))}));
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return EngineError(r, absl::StrCat("inspect volume ", name));
}

absl::StatusOr<std::vector<std::string>> DockerEngineClient::ListVolumes(
    const std::string& label) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/volumes?filters=",
                                                            LabelFilter(label))}));
  if (r.status != 200) return EngineError(r, absl::StrCat("list volumes with label ", label));
  return CatchJson("list volumes", [&]() -> absl::StatusOr<std::vector<std::string>> {
    ASSIGN_OR_RETURN(json j, ParseJson(r, "list volumes"));
    if (!j.is_object()) return absl::InternalError("list volumes: answer is not an object");
    std::vector<std::string> out;
    auto vols = j.find("Volumes");
    if (vols == j.end() || !vols->is_array()) return out;  // null when there are none
    for (const auto& v : *vols) {
      if (!v.is_object()) continue;
      if (auto it = v.find("Name"); it != v.end() && it->is_string()) {
        out.push_back(it->get<std::string>());
      }
    }
    return out;
  });
}

}  // namespace dockyard
