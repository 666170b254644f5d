// One stage of a pipeline file: its keys, caches, artifacts, reports, limits and
// agent labels, each checked with a message naming the file and line.
#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "common/pipeline_parser_internal.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace dockyard::pipeline_internal {

absl::Status Parser::ParseStage(const YAML::Node& node, int index, v1::Stage* stage) {
  int line = LineOf(node, 1);
  stage->set_line(line);
  std::string where = absl::StrCat("in stage #", index + 1);
  // The name goes into every later message, so it is looked up before anything is checked.
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "name" && it->second.IsScalar() &&
          IsStageName(it->second.Scalar())) {
        where = absl::StrCat("in stage ", Quote(it->second.Scalar()));
        break;
      }
    }
  }
  if (!node.IsMap()) {
    return Error(line, absl::StrCat("stage #", index + 1, " must be a map, got ", Describe(node)));
  }
  ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(node, line, "stage", where,
                                    {"name", "image", "workdir", "env", "run", "shell", "needs",
                                     "network", "timeout", "caches", "artifacts", "agent",
                                     "retries", "reports", "limits", "secrets", "inputs", "services",
                                     "pull", "pull_secret"}));
  bool has_name = false, has_image = false, has_run = false;
  for (const Entry& e : entries) {
    if (e.key == "name") {
      ASSIGN_OR_RETURN(std::string name, String(e, where));
      if (!IsStageName(name)) {
        return Error(e.line, absl::StrCat("bad stage name ", Quote(name),
                                          ": use letters, digits, '_' and '-', "
                                          "starting with a letter or digit"));
      }
      stage->set_name(name);
      has_name = true;
    } else if (e.key == "image" && e.value.IsMap()) {
      RETURN_IF_ERROR(ParseImageBuild(e, where, stage));
      has_image = true;
    } else if (e.key == "image") {
      ASSIGN_OR_RETURN(std::string image, String(e, where));
      if (image.empty()) return Error(e.line, absl::StrCat("\"image\" ", where, " is empty"));
      if (auto declared = declared_images_.find(image); declared != declared_images_.end()) {
        *stage->mutable_image_build() = declared->second;
        image = absl::StrCat(image, " (built from ", declared->second.dockerfile(), ")");
      }
      stage->set_image(image);
      has_image = true;
    } else if (e.key == "workdir") {
      ASSIGN_OR_RETURN(std::string workdir, String(e, where));
      if (workdir.empty() || workdir[0] != '/') {
        return Error(e.line, absl::StrCat("\"workdir\" ", where, " must be an absolute path, got ",
                                          Quote(workdir)));
      }
      stage->set_workdir(workdir);
    } else if (e.key == "env") {
      RETURN_IF_ERROR(ParseEnv(e, where, stage->mutable_env()));
    } else if (e.key == "run") {
      ASSIGN_OR_RETURN(std::string run, String(e, where));
      if (absl::StripAsciiWhitespace(run).empty()) {
        return Error(e.line, absl::StrCat("\"run\" ", where, " is empty"));
      }
      if (run.size() > kMaxScriptBytes) {
        return Error(e.line, absl::StrCat("\"run\" ", where, " is ", run.size(), " bytes; at most ", kMaxScriptBytes,
                                          " fit in a container's command line: put longer scripts in the source "
                                          "tree and run them from there"));
      }
      stage->set_run(run);
      has_run = true;
    } else if (e.key == "shell") {
      ASSIGN_OR_RETURN(std::vector<std::string> shell, StringList(e, where, false));
      if (shell.empty()) return Error(e.line, absl::StrCat("\"shell\" ", where, " is empty"));
      for (std::string& arg : shell) stage->add_shell(std::move(arg));
    } else if (e.key == "needs") {
      ASSIGN_OR_RETURN(std::vector<std::string> needs, StringList(e, where, true));
      for (std::string& need : needs) stage->add_needs(std::move(need));
    } else if (e.key == "network") {
      ASSIGN_OR_RETURN(std::string network, String(e, where));
      if (network != "none" && network != "bridge") {
        return Error(e.line, absl::StrCat("bad network ", Quote(network), " ", where,
                                          ": use \"none\" or \"bridge\""));
      }
      stage->set_network(network);
    } else if (e.key == "timeout") {
      ASSIGN_OR_RETURN(std::string text, String(e, where));
      absl::StatusOr<int64_t> ms = ParseDurationMs(text);
      if (!ms.ok()) {
        return Error(e.line, absl::StrCat("\"timeout\" ", where, ": ", ms.status().message()));
      }
      stage->set_timeout_ms(*ms);
    } else if (e.key == "caches") {
      RETURN_IF_ERROR(ParseStageCaches(e, where, stage));
    } else if (e.key == "artifacts") {
      RETURN_IF_ERROR(ParseArtifacts(e, where, stage));
    } else if (e.key == "reports") {
      RETURN_IF_ERROR(ParseReports(e, where, stage));
    } else if (e.key == "limits") {
      RETURN_IF_ERROR(ParseStageLimits(e, where, stage));
    } else if (e.key == "inputs") {
      RETURN_IF_ERROR(ParseInputs(e, where, stage));
    } else if (e.key == "services") {
      RETURN_IF_ERROR(ParseServices(e, where, stage));
    } else if (e.key == "secrets") {
      ASSIGN_OR_RETURN(std::vector<std::string> names, StringList(e, where, true));
      for (std::string& name : names) {
        if (!IsEnvName(name)) {
          return Error(e.line, absl::StrCat("bad secret name ", Quote(name), " ", where,
                                            ": secrets are environment variables (letters, digits and '_')"));
        }
        stage->add_secrets(std::move(name));
      }
    } else if (e.key == "pull") {
      ASSIGN_OR_RETURN(std::string pull, String(e, where));
      if (pull == "if-not-present") {
        stage->set_pull(v1::PULL_IF_NOT_PRESENT);
      } else if (pull == "always") {
        stage->set_pull(v1::PULL_ALWAYS);
      } else if (pull == "never") {
        stage->set_pull(v1::PULL_NEVER);
      } else {
        return Error(e.line, absl::StrCat("bad \"pull\" ", Quote(pull), " ", where,
                                          ": use \"if-not-present\" (the default), \"always\" or \"never\""));
      }
    } else if (e.key == "pull_secret") {
      ASSIGN_OR_RETURN(std::string name, String(e, where));
      if (!IsEnvName(name)) {
        // Never quoted: it may be the very login someone pasted in.
        return Error(e.line, absl::StrCat("bad \"pull_secret\" ", where,
                                          ": name a secret of the controller (letters, digits and '_') holding "
                                          "username:password; the login itself never goes in the pipeline"));
      }
      stage->set_pull_secret(name);
    } else if (e.key == "agent") {
      RETURN_IF_ERROR(ParseAgent(e, where, stage));
    } else if (e.key == "retries") {
      int retries = -1;
      if (!e.value.IsScalar() || !absl::SimpleAtoi(e.value.Scalar(), &retries) || retries < 0 ||
          retries > kMaxRetries) {
        return Error(e.line, absl::StrCat("\"retries\" ", where, " must be a whole number from 0 to ",
                                          kMaxRetries, ", got ", Describe(e.value)));
      }
      stage->set_retries(retries);
    }
  }
  if (!has_name) return Error(line, absl::StrCat("missing required key \"name\" ", where));
  if (!has_image) return Error(line, absl::StrCat("missing required key \"image\" ", where));
  if (!has_run) return Error(line, absl::StrCat("missing required key \"run\" ", where));
  for (const auto& [producer, dir] : stage->inputs()) {
    if (std::find(stage->needs().begin(), stage->needs().end(), producer) == stage->needs().end()) {
      return Error(line, absl::StrCat("\"inputs\" ", where, " names stage ", Quote(producer),
                                      ", which is not in its \"needs\" (its artifacts must exist first)"));
    }
  }
  for (const std::string& secret : stage->secrets()) {
    if (stage->env().count(secret) != 0) {
      return Error(line, absl::StrCat("\"", secret, "\" ", where, " is both in \"env\" and in \"secrets\": ",
                                      "a secret's value comes from the controller only"));
    }
  }
  if (stage->workdir().empty()) stage->set_workdir(kDefaultWorkdir);
  if (stage->shell_size() == 0) {
    for (const char* arg : {"sh", "-e", "-c"}) stage->add_shell(arg);
  }
  if (stage->network().empty()) stage->set_network("none");
  return absl::OkStatus();
}

absl::Status Parser::ParseStageCaches(const Entry& e, absl::string_view where, v1::Stage* stage) {
  ASSIGN_OR_RETURN(std::vector<Entry> mounts, Entries(e.value, e.line, "\"caches\"", where, {}));
  for (const Entry& m : mounts) {
    if (!IsCacheName(m.key)) {
      return Error(m.line, absl::StrCat("bad cache name ", Quote(m.key), " ", where,
                                        ": use lower-case letters, digits, '_' and '-'"));
    }
    // `build: /build`, or `build: {path: /build, read_only: true}`.
    YAML::Node path = m.value;
    bool read_only = false;
    if (m.value.IsMap()) {
      ASSIGN_OR_RETURN(std::vector<Entry> keys, Entries(m.value, m.line, Quote(m.key), where, {"path", "read_only"}));
      path = YAML::Node();
      for (const Entry& k : keys) {
        if (k.key == "path") path = k.value;
        if (k.key == "read_only" && !(k.value.IsScalar() && YAML::convert<bool>::decode(k.value, read_only))) {
          return Error(k.line, absl::StrCat("\"read_only\" of cache ", Quote(m.key), " ", where,
                                            " must be true or false, got ", Describe(k.value)));
        }
      }
    }
    if (!path.IsScalar() || path.Scalar().empty() || path.Scalar()[0] != '/') {
      return Error(m.line, absl::StrCat("cache ", Quote(m.key), " ", where,
                                        " must be mounted at an absolute path, got ",
                                        Describe(path)));
    }
    v1::CacheMount* mount = stage->add_caches();
    mount->set_name(m.key);
    mount->set_path(path.Scalar());
    mount->set_read_only(read_only);
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseStageLimits(const Entry& e, absl::string_view where, v1::Stage* stage) {
  ASSIGN_OR_RETURN(std::vector<Entry> limits,
                   Entries(e.value, e.line, "\"limits\"", where, {"memory", "pids", "cpus"}));
  v1::StageLimits* out = stage->mutable_limits();
  for (const Entry& limit : limits) {
    ASSIGN_OR_RETURN(std::string text, String(limit, where));
    if (limit.key == "memory") {
      auto bytes = ParseByteSize(text);
      if (!bytes.ok()) return Error(limit.line, absl::StrCat("\"memory\" ", where, ": ", bytes.status().message()));
      out->set_memory_bytes(*bytes);
    } else if (limit.key == "pids") {
      int64_t pids = 0;
      if (!absl::SimpleAtoi(text, &pids) || pids < 1) {
        return Error(limit.line, absl::StrCat("\"pids\" ", where, " must be a whole number of at least 1, got ",
                                              Quote(text)));
      }
      out->set_pids(pids);
    } else {
      auto milli = ParseMilliCpus(text);
      if (!milli.ok()) return Error(limit.line, absl::StrCat("\"cpus\" ", where, ": ", milli.status().message()));
      out->set_milli_cpus(*milli);
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseReports(const Entry& e, absl::string_view where, v1::Stage* stage) {
  ASSIGN_OR_RETURN(std::vector<Entry> kinds, Entries(e.value, e.line, "\"reports\"", where, {"junit"}));
  for (const Entry& kind : kinds) {
    std::vector<YAML::Node> items;
    if (kind.value.IsSequence()) {
      for (const YAML::Node& item : kind.value) items.push_back(item);
    } else {
      items.push_back(kind.value);
    }
    for (const YAML::Node& item : items) {
      if (!item.IsScalar() || item.Scalar().empty() || item.Scalar()[0] != '/') {
        return Error(LineOf(item, kind.line),
                     absl::StrCat("\"junit\" reports ", where, " must be absolute paths or globs, got ",
                                  Describe(item)));
      }
      stage->add_junit_reports(item.Scalar());
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseArtifacts(const Entry& e, absl::string_view where, v1::Stage* stage) {
  if (!e.value.IsSequence()) {
    return Error(e.line, absl::StrCat("\"artifacts\" ", where, " must be a list, got ",
                                      Describe(e.value)));
  }
  std::string item_where = absl::StrCat("in an artifact ", where);
  for (const YAML::Node& item : e.value) {
    int line = LineOf(item, e.line);
    v1::ArtifactSpec* spec = stage->add_artifacts();
    if (item.IsScalar()) {
      spec->set_pattern(item.Scalar());
    } else if (item.IsMap()) {
      ASSIGN_OR_RETURN(std::vector<Entry> fields,
                       Entries(item, line, "artifact", item_where, {"path", "optional"}));
      bool has_path = false;
      for (const Entry& f : fields) {
        if (f.key == "path") {
          ASSIGN_OR_RETURN(std::string path, String(f, item_where));
          spec->set_pattern(path);
          has_path = true;
        } else {
          bool optional = false;
          if (!f.value.IsScalar() || !YAML::convert<bool>::decode(f.value, optional)) {
            return Error(f.line, absl::StrCat("\"optional\" ", item_where,
                                              " must be true or false, got ",
                                              Describe(f.value)));
          }
          spec->set_optional(optional);
        }
      }
      if (!has_path) return Error(line, absl::StrCat("missing required key \"path\" ", item_where));
    } else {
      return Error(line, absl::StrCat("an artifact ", where,
                                      " must be a glob or a map {path, optional}, got ",
                                      Describe(item)));
    }
    if (spec->pattern().empty() || spec->pattern()[0] != '/') {
      return Error(line, absl::StrCat("artifact ", Quote(spec->pattern()), " ", where,
                                      " must be an absolute path (glob) in the container"));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseAgent(const Entry& e, absl::string_view where, v1::Stage* stage) {
  if (!e.value.IsMap()) {
    return Error(e.line, absl::StrCat("\"agent\" ", where, " must be a map, got ",
                                      Describe(e.value)));
  }
  // `where` reads "in stage ...".
  std::string agent_where = absl::StrCat("in \"agent\" of ", where.substr(3));
  ASSIGN_OR_RETURN(std::vector<Entry> fields,
                   Entries(e.value, e.line, "\"agent\"", agent_where, {"labels"}));
  for (const Entry& f : fields) {
    ASSIGN_OR_RETURN(std::vector<std::string> labels, StringList(f, agent_where, false));
    for (std::string& label : labels) {
      if (label.empty()) return Error(f.line, absl::StrCat("empty label ", agent_where));
      stage->add_agent_labels(std::move(label));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseInputs(const Entry& e, absl::string_view where, v1::Stage* stage) {
  ASSIGN_OR_RETURN(std::vector<Entry> inputs, Entries(e.value, e.line, "\"inputs\"", where, {}));
  for (const Entry& input : inputs) {
    if (!input.value.IsScalar() || input.value.Scalar().empty() || input.value.Scalar()[0] != '/') {
      return Error(input.line, absl::StrCat("input ", Quote(input.key), " ", where,
                                            " must go to an absolute directory, got ", Describe(input.value)));
    }
    (*stage->mutable_inputs())[input.key] = input.value.Scalar();
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseServices(const Entry& e, absl::string_view where, v1::Stage* stage) {
  if (!e.value.IsSequence()) {
    return Error(e.line, absl::StrCat("\"services\" ", where, " must be a list of services, got ", Describe(e.value)));
  }
  if (e.value.size() > static_cast<size_t>(kMaxServices)) {
    return Error(e.line, absl::StrCat("\"services\" ", where, " lists ", e.value.size(), " services; at most ",
                                      kMaxServices, " run beside one stage"));
  }
  std::set<std::string> names;
  for (const YAML::Node& node : e.value) {
    v1::Service* service = stage->add_services();
    RETURN_IF_ERROR(ParseService(node, LineOf(node, e.line), where, service));
    if (!names.insert(service->name()).second) {
      return Error(service->line(), absl::StrCat("two services named ", Quote(service->name()), " ", where));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseService(const YAML::Node& node, int line, absl::string_view where, v1::Service* service) {
  service->set_line(line);
  if (!node.IsMap()) return Error(line, absl::StrCat("a service ", where, " must be a map, got ", Describe(node)));
  std::string at = absl::StrCat("in a service of ", where.substr(3));
  if (node["name"] && node["name"].IsScalar()) {
    at = absl::StrCat("in service ", Quote(node["name"].Scalar()), " of ", where.substr(3));
  }
  ASSIGN_OR_RETURN(std::vector<Entry> entries,
                   Entries(node, line, "service", at, {"name", "image", "env", "run", "ready", "ready_timeout"}));
  service->set_ready_timeout_ms(kDefaultReadyTimeoutMs);
  for (const Entry& f : entries) {
    if (f.key == "name") {
      ASSIGN_OR_RETURN(std::string name, String(f, at));
      if (!IsServiceName(name)) {
        return Error(f.line, absl::StrCat("bad service name ", Quote(name), " ", where,
                                          ": it is a host name, so lower-case letters, digits and '-', "
                                          "starting with a letter"));
      }
      service->set_name(name);
    } else if (f.key == "image") {
      ASSIGN_OR_RETURN(std::string image, String(f, at));
      if (image.empty()) return Error(f.line, absl::StrCat("\"image\" ", at, " is empty"));
      service->set_image(image);
    } else if (f.key == "env") {
      RETURN_IF_ERROR(ParseEnv(f, at, service->mutable_env()));
    } else if (f.key == "run" || f.key == "ready") {
      ASSIGN_OR_RETURN(std::string script, String(f, at));
      if (absl::StripAsciiWhitespace(script).empty()) {
        return Error(f.line, absl::StrCat("\"", f.key, "\" ", at, " is empty (leave it out for the default)"));
      }
      if (script.size() > kMaxScriptBytes) {
        return Error(f.line, absl::StrCat("\"", f.key, "\" ", at, " is ", script.size(), " bytes; at most ",
                                          kMaxScriptBytes, " fit in a command line"));
      }
      f.key == "run" ? service->set_run(script) : service->set_ready(script);
    } else if (f.key == "ready_timeout") {
      ASSIGN_OR_RETURN(std::string text, String(f, at));
      absl::StatusOr<int64_t> ms = ParseDurationMs(text);
      if (!ms.ok() || *ms <= 0) {
        return Error(f.line, absl::StrCat("\"ready_timeout\" ", at, ": ",
                                          ms.ok() ? "must be more than 0" : ms.status().message()));
      }
      service->set_ready_timeout_ms(*ms);
    }
  }
  if (service->name().empty()) return Error(line, absl::StrCat("missing required key \"name\" ", at));
  if (service->image().empty()) return Error(line, absl::StrCat("missing required key \"image\" ", at));
  return absl::OkStatus();
}

absl::Status Parser::ParseImageBuild(const Entry& e, absl::string_view where, v1::Stage* stage) {
  ASSIGN_OR_RETURN(std::vector<Entry> outer, Entries(e.value, e.line, "\"image\"", where, {"build"}));
  if (outer.empty()) return Error(e.line, absl::StrCat("\"image\" ", where, " is a map without \"build\""));
  const Entry& build = outer.front();
  const std::string at = absl::StrCat("in \"image: build\" of ", where.substr(3));
  v1::ImageBuild* out = stage->mutable_image_build();
  // A path in the shipped source tree: relative, and never climbing out of it.
  auto source_path = [&](const Entry& f, const std::string& text) -> absl::StatusOr<std::string> {
    const std::string normal = std::filesystem::path(text).lexically_normal().string();
    if (text.empty() || text[0] == '/' || normal == ".." || normal.rfind("../", 0) == 0) {
      return Error(f.line, absl::StrCat("\"", f.key, "\" ", at, " must be a path inside the pipeline's source, got ",
                                        Quote(text)));
    }
    return normal.size() > 1 && normal.back() == '/' ? normal.substr(0, normal.size() - 1) : normal;
  };
  std::string dockerfile;
  if (build.value.IsScalar()) {  // `build: DIR`, with DIR/Dockerfile
    ASSIGN_OR_RETURN(std::string context, source_path(build, build.value.Scalar()));
    out->set_context(context);
  } else {
    ASSIGN_OR_RETURN(std::vector<Entry> fields,
                     Entries(build.value, build.line, "\"build\"", at, {"context", "dockerfile", "args", "target"}));
    out->set_context(".");
    for (const Entry& f : fields) {
      if (f.key == "args") {
        ASSIGN_OR_RETURN(std::vector<Entry> args, Entries(f.value, f.line, "\"args\"", at, {}));
        for (const Entry& arg : args) {
          if (!arg.value.IsScalar()) {
            return Error(arg.line, absl::StrCat("build argument ", Quote(arg.key), " ", at, " must be a string"));
          }
          (*out->mutable_args())[arg.key] = arg.value.Scalar();
        }
        continue;
      }
      ASSIGN_OR_RETURN(std::string text, String(f, at));
      if (f.key == "target") {
        out->set_target(text);
      } else if (f.key == "context") {
        ASSIGN_OR_RETURN(std::string context, source_path(f, text));
        out->set_context(context);
      } else {
        ASSIGN_OR_RETURN(dockerfile, source_path(f, text));
      }
    }
  }
  const std::string& context = out->context();
  if (dockerfile.empty()) dockerfile = context == "." ? "Dockerfile" : context + "/Dockerfile";
  if (context != "." && dockerfile.rfind(context + "/", 0) != 0) {
    return Error(build.line, absl::StrCat("dockerfile ", Quote(dockerfile), " ", at, " is outside its context ",
                                          Quote(context), " (the engine sees only the context)"));
  }
  out->set_dockerfile(dockerfile);
  stage->set_image(absl::StrCat("built from ", dockerfile));
  return absl::OkStatus();
}

absl::Status Parser::ParseEnv(const Entry& e, absl::string_view where,
                              google::protobuf::Map<std::string, std::string>* env) {
  ASSIGN_OR_RETURN(std::vector<Entry> vars, Entries(e.value, e.line, "\"env\"", where, {}));
  for (const Entry& v : vars) {
    if (!IsEnvName(v.key)) {
      return Error(v.line, absl::StrCat("bad environment variable name ", Quote(v.key), " ", where));
    }
    if (!v.value.IsScalar()) {
      return Error(v.line, absl::StrCat("environment variable ", Quote(v.key), " ", where,
                                        " must be a string, number or boolean, got ", Describe(v.value),
                                        " (write \"\" for empty)"));
    }
    (*env)[v.key] = v.value.Scalar();
  }
  return absl::OkStatus();
}

}  // namespace dockyard::pipeline_internal
