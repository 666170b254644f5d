#include "agent/docker_engine_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/docker_http.h"
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

using namespace docker_http;  // NOLINT: the transport this client is built on

}  // namespace

DockerEngineClient::DockerEngineClient(std::string socket_path, std::string api_version)
    : socket_path_(std::move(socket_path)), api_version_(std::move(api_version)) {}

absl::Status DockerEngineClient::Ping() {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_, {.target = "/_ping"}));
  if (r.status != 200) return EngineError(r, "ping");
  return absl::OkStatus();
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
    if (!spec.entrypoint.empty()) j["Entrypoint"] = spec.entrypoint;
    if (!spec.extra_hosts.empty()) host["ExtraHosts"] = spec.extra_hosts;
    if (!spec.workdir.empty()) j["WorkingDir"] = spec.workdir;
    if (!spec.log_driver.empty()) host["LogConfig"] = {{"Type", spec.log_driver}, {"Config", spec.log_options}};
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
        "\" not found on this agent (creating a container never pulls; see the stage's pull:): ",
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

absl::Status DockerEngineClient::StreamArchive(const std::string& id, const std::string& path, int64_t max_bytes,
                                               const std::function<absl::Status(std::string_view)>& sink) {
  int64_t received = 0;
  auto take = [&](std::string_view bytes) -> absl::Status {
    received += static_cast<int64_t>(bytes.size());
    if (max_bytes > 0 && received > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("the files under ", path, " are more than ", max_bytes,
                                                       " bytes, the agent's limit (--max_artifact_bytes)"));
    }
    return sink(bytes);
  };
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/containers/", Escape(id), "/archive?path=", Escape(path)),
                                     .long_running = true,
                                     .stream_body = take}));
  if (r.status != 200) return EngineError(r, absl::StrCat("get archive of ", path, " from container ", id));
  return absl::OkStatus();
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
    RETURN_IF_ERROR(Logs(id, follow, decoder));
    if (!follow) return absl::OkStatus();  // the whole log of an exited container: complete
    if (round > 1000) return absl::InternalError(absl::StrCat("logs of container ", id, " keep breaking off"));
  }
}

absl::StatusOr<ExecResult> DockerEngineClient::Exec(const std::string& id, const std::vector<std::string>& cmd,
                                                    absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::string body, CatchJson("exec", [&]() -> absl::StatusOr<std::string> {
    return DumpJson({{"Cmd", cmd}, {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}});
  }));
  ASSIGN_OR_RETURN(Reply created, Perform(socket_path_, api_version_,
                                          {.method = "POST",
                                           .target = absl::StrCat("/containers/", Escape(id), "/exec"),
                                           .json_body = std::move(body)}));
  if (created.status != 201) return EngineError(created, absl::StrCat("exec in container ", id));
  ASSIGN_OR_RETURN(std::string exec_id, CatchJson("exec", [&]() -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(json j, ParseJson(created, "exec"));
    if (!j.is_object() || !j.contains("Id") || !j["Id"].is_string()) {
      return absl::InternalError(absl::StrCat("exec: no Id in answer: ", created.body));
    }
    return j["Id"].get<std::string>();
  }));
  // Without an Upgrade header the engine answers 200 and streams the command's
  // multiplexed output until it exits, then closes.
  constexpr size_t kTailBytes = 4096;
  ExecResult result;
  DockerLogDecoder decoder([&](OutputStream, std::string_view data) {
    result.output_tail.append(data);
    if (result.output_tail.size() > 2 * kTailBytes) result.output_tail.erase(0, result.output_tail.size() - kTailBytes);
  });
  absl::StatusOr<Reply> started =
      Perform(socket_path_, api_version_,
              {.method = "POST",
               .target = absl::StrCat("/exec/", Escape(exec_id), "/start"),
               .json_body = std::string(R"({"Detach":false,"Tty":false})"),
               .timeout_ms = std::max<long>(1, static_cast<long>(absl::ToInt64Milliseconds(timeout))),
               .stream_body = [&](std::string_view bytes) { return decoder.Feed(bytes); }});
  if (!started.ok()) {
    if (absl::IsDeadlineExceeded(started.status())) {
      return absl::DeadlineExceededError(absl::StrCat("still running after ", absl::FormatDuration(timeout)));
    }
    return started.status();
  }
  if (started->status != 200) return EngineError(*started, absl::StrCat("start exec in container ", id));
  if (result.output_tail.size() > kTailBytes) result.output_tail.erase(0, result.output_tail.size() - kTailBytes);
  ASSIGN_OR_RETURN(Reply inspected, Perform(socket_path_, api_version_,
                                            {.target = absl::StrCat("/exec/", Escape(exec_id), "/json")}));
  if (inspected.status != 200) return EngineError(inspected, absl::StrCat("inspect exec in container ", id));
  return CatchJson("exec", [&]() -> absl::StatusOr<ExecResult> {
    ASSIGN_OR_RETURN(json j, ParseJson(inspected, "inspect exec"));
    if (j.value("Running", false)) return absl::InternalError("exec: the command still runs after its output ended");
    auto code = j.find("ExitCode");
    if (code == j.end() || !code->is_number_integer()) {
      return absl::InternalError(absl::StrCat("exec: no ExitCode in answer: ", inspected.body));
    }
    result.exit_code = code->get<int64_t>();
    return result;
  });
}

absl::Status DockerEngineClient::ReadLogs(const std::string& id, const OutputSink& sink) {
  DockerLogDecoder decoder(sink);
  return Logs(id, /*follow=*/false, decoder);
}

absl::Status DockerEngineClient::AttachOutput(const std::string& id, const std::function<void()>& attached,
                                              const OutputSink& sink) {
  DockerLogDecoder decoder(sink);
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.method = "POST",
                                     .target = absl::StrCat("/containers/", Escape(id),
                                                            "/attach?stream=1&stdout=1&stderr=1"),
                                     .long_running = true,
                                     .stream_body = [&](std::string_view bytes) { return decoder.Feed(bytes); },
                                     .on_headers = attached}));
  if (r.status != 200 && r.status != 101) return EngineError(r, absl::StrCat("attach to container ", id));
  return decoder.Finish();
}

absl::Status DockerEngineClient::Logs(const std::string& id, bool follow, DockerLogDecoder& decoder) {
  ASSIGN_OR_RETURN(Reply r, Perform(socket_path_, api_version_,
                                    {.target = absl::StrCat("/containers/", Escape(id), "/logs?follow=",
                                                            follow ? "1" : "0", "&stdout=1&stderr=1"),
                                     .long_running = true,
                                     .stream_body = [&](std::string_view bytes) { return decoder.Feed(bytes); }}));
  if (r.status != 200) return EngineError(r, absl::StrCat("logs of container ", id));
  return decoder.Finish();
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
                                    {.target = absl::StrCat("/containers/json?all=1", label.empty() ? "" : "&filters=",
                                                            label.empty() ? "" : LabelFilter(label))}));
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
      if (auto it = c.find("ImageID"); it != c.end() && it->is_string()) s.image_id = it->get<std::string>();
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
