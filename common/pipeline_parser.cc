#include "common/pipeline_parser.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/names.h"
#include "common/pipeline_parser_internal.h"
#include "common/sha256.h"
#include "common/stage_graph.h"
#include "common/units.h"
#include "common/utf8.h"
#include "common/status_macros.h"

namespace dockyard {

namespace fs = std::filesystem;

namespace pipeline_internal {

bool IsAsciiAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

bool IsPipelineName(absl::string_view s) {
  if (s.empty() || !IsAsciiAlnum(s[0])) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsStageName(absl::string_view s) {
  if (s.empty() || !IsAsciiAlnum(s[0])) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// Cache names become parts of Docker volume names, which is why they are lower-case only.
bool IsCacheName(absl::string_view s) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || !lower_alnum(s[0])) return false;
  for (char c : s) {
    if (!lower_alnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsCacheKey(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsServiceName(absl::string_view s) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || s.size() > 63 || !(s[0] >= 'a' && s[0] <= 'z') || s.back() == '-') return false;
  for (char c : s) {
    if (!lower_alnum(c) && c != '-') return false;
  }
  return true;
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InvalidArgumentError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::StatusOr<std::vector<Entry>> Parser::Entries(
    const YAML::Node& node, int line, absl::string_view what, absl::string_view where,
    std::initializer_list<absl::string_view> allowed) const {
  if (!node.IsMap()) {
    return Error(line, absl::StrCat(what, " ", where, " must be a map, got ", Describe(node)));
  }
  std::vector<Entry> entries;
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // The iterator hands out a temporary pair: the nodes are copied (cheap handles).
    YAML::Node key = it->first;
    int key_line = LineOf(key, line);
    if (!key.IsScalar()) {
      return Error(key_line, absl::StrCat("keys ", where, " must be strings, got ", Describe(key)));
    }
    const std::string& name = key.Scalar();
    if (allowed.size() > 0 &&
        std::find(allowed.begin(), allowed.end(), absl::string_view(name)) == allowed.end()) {
      return Error(key_line, absl::StrCat("unknown key ", Quote(name), " ", where,
                                          " (expected one of: ", absl::StrJoin(allowed, ", "),
                                          ")"));
    }
    if (!seen.insert(name).second) {
      return Error(key_line, absl::StrCat("duplicate key ", Quote(name), " ", where));
    }
    entries.push_back(Entry{name, key_line, it->second});
  }
  return entries;
}

absl::StatusOr<std::string> Parser::String(const Entry& e, absl::string_view where) const {
  if (!e.value.IsScalar()) {
    return Error(e.line, absl::StrCat(Quote(e.key), " ", where, " must be a string, got ",
                                      Describe(e.value)));
  }
  return e.value.Scalar();
}

absl::StatusOr<std::vector<std::string>> Parser::StringList(const Entry& e,
                                                            absl::string_view where,
                                                            bool single_string_ok) const {
  if (single_string_ok && e.value.IsScalar()) return std::vector<std::string>{e.value.Scalar()};
  if (!e.value.IsSequence()) {
    return Error(e.line, absl::StrCat(Quote(e.key), " ", where, " must be a list of strings",
                                      single_string_ok ? " (or one string)" : "", ", got ",
                                      Describe(e.value)));
  }
  std::vector<std::string> out;
  for (const YAML::Node& item : e.value) {
    if (!item.IsScalar()) {
      return Error(LineOf(item, e.line),
                   absl::StrCat(Quote(e.key), " ", where,
                                " must be a list of strings, but an item is ", Describe(item)));
    }
    out.push_back(item.Scalar());
  }
  return out;
}

absl::StatusOr<PipelineFile> Parser::Parse(const YAML::Node& root) {
  if (root.IsNull() || !root.IsDefined()) return Error(1, "the pipeline is empty");
  ASSIGN_OR_RETURN(std::vector<Entry> entries,
                   Entries(root, LineOf(root, 1), "the pipeline", "at top level",
                           {"name", "source", "env", "caches", "images", "stages"}));
  google::protobuf::Map<std::string, std::string> pipeline_env;
  v1::Pipeline& p = out_.pipeline;
  p.set_file(file_);
  const Entry* stages = nullptr;
  bool has_name = false;
  for (const Entry& e : entries) {
    if (e.key == "name") {
      ASSIGN_OR_RETURN(std::string name, String(e, "at top level"));
      if (!IsPipelineName(name)) {
        return Error(e.line, absl::StrCat("bad pipeline name ", Quote(name),
                                          ": use letters, digits, '.', '_' and '-', "
                                          "starting with a letter or digit"));
      }
      p.set_name(name);
      has_name = true;
    } else if (e.key == "source") {
      ASSIGN_OR_RETURN(std::string source, String(e, "at top level"));
      if (source.empty()) return Error(e.line, "\"source\" must not be empty");
      fs::path dir = fs::absolute(fs::path(base_dir_) / source).lexically_normal();
      std::string text = dir.string();
      while (text.size() > 1 && text.back() == '/') text.pop_back();
      std::error_code ec;
      if (!fs::is_directory(text, ec)) {
        return Error(e.line, absl::StrCat("source ", Quote(source), " is not a directory (",
                                          text, ")"));
      }
      // After every symlink: a pipeline file (say, from a pull request) ships only
      // what lies beside it, never the host's other files.
      const fs::path real = fs::canonical(text, ec);
      const fs::path base = fs::canonical(fs::absolute(base_dir_), ec);
      if (ec || std::mismatch(base.begin(), base.end(), real.begin(), real.end()).first != base.end()) {
        return Error(e.line, absl::StrCat("source ", Quote(source), " resolves to ", real.string(),
                                          ", outside the pipeline's directory ", base.string(),
                                          ": a pipeline may only ship files beside it"));
      }
      out_.source_dir = text;
    } else if (e.key == "env") {
      RETURN_IF_ERROR(ParseEnv(e, "at top level", &pipeline_env));
    } else if (e.key == "caches") {
      RETURN_IF_ERROR(ParseCaches(e));
    } else if (e.key == "images") {
      RETURN_IF_ERROR(ParseImages(e));
    } else if (e.key == "stages") {
      stages = &e;
    }
  }
  int root_line = LineOf(root, 1);
  if (!has_name) return Error(root_line, "missing required key \"name\" at top level");
  if (stages == nullptr) return Error(root_line, "missing required key \"stages\" at top level");
  if (!stages->value.IsSequence()) {
    return Error(stages->line, absl::StrCat("\"stages\" must be a list of stages, got ",
                                            Describe(stages->value)));
  }
  if (stages->value.size() == 0) return Error(stages->line, "\"stages\" is empty");
  if (stages->value.size() > limits_.max_stages) {
    return Error(stages->line, absl::StrCat("\"stages\" has ", stages->value.size(), " stages; a pipeline may have at most ",
                                            limits_.max_stages, " (--max_stages)"));
  }
  int index = 0;
  for (const YAML::Node& node : stages->value) {
    RETURN_IF_ERROR(ParseStage(node, index++, p.add_stages()));
  }
  for (const v1::Stage& stage : p.stages()) {
    if (stage.has_image_build() && out_.source_dir.empty()) {
      return Error(stage.line(), absl::StrCat("stage ", Quote(stage.name()), " builds its image from ",
                                              stage.image_build().dockerfile(),
                                              " in the source tree, but the pipeline has no \"source\""));
    }
  }
  // The pipeline's env: under each stage's own (and its secrets), which win.
  for (v1::Stage& stage : *p.mutable_stages()) {
    for (const auto& [name, value] : pipeline_env) {
      const bool secret = std::find(stage.secrets().begin(), stage.secrets().end(), name) != stage.secrets().end();
      if (!secret) stage.mutable_env()->insert({name, value});
      for (v1::Service& service : *stage.mutable_services()) service.mutable_env()->insert({name, value});
    }
  }
  // Caches only named by stages live as long as the run (no key), which needs no
  // declaration; listing them lets the agent create every volume up front.
  for (const v1::Stage& stage : p.stages()) {
    for (const v1::CacheMount& mount : stage.caches()) {
      if (cache_names_.insert(mount.name()).second) p.add_caches()->set_name(mount.name());
    }
  }
  RETURN_IF_ERROR(ValidateStageGraph(p));
  return std::move(out_);
}

absl::Status Parser::ParseImages(const Entry& images) {
  ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(images.value, images.line, "\"images\"", "at top level", {}));
  for (const Entry& image : entries) {
    if (!IsServiceName(image.key)) {
      return Error(image.line, absl::StrCat("bad image name ", Quote(image.key), " in \"images\"",
                                            ": use lower-case letters, digits and '-'"));
    }
    v1::Stage holder;
    RETURN_IF_ERROR(ParseImageBuild(image, absl::StrCat("in image ", Quote(image.key)), &holder));
    declared_images_[image.key] = holder.image_build();
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseCaches(const Entry& caches) {
  ASSIGN_OR_RETURN(std::vector<Entry> entries,
                   Entries(caches.value, caches.line, "\"caches\"", "at top level", {}));
  for (const Entry& c : entries) {
    if (!IsCacheName(c.key)) {
      return Error(c.line, absl::StrCat("bad cache name ", Quote(c.key),
                                        ": use lower-case letters, digits, '_' and '-'"));
    }
    std::string where = absl::StrCat("in cache ", Quote(c.key));
    std::string key;
    std::vector<std::pair<std::string, int>> key_files;  // path as written, line
    if (!c.value.IsNull()) {
      ASSIGN_OR_RETURN(std::vector<Entry> fields,
                       Entries(c.value, c.line, "cache", where, {"key", "key_files"}));
      for (const Entry& f : fields) {
        if (f.key == "key") {
          ASSIGN_OR_RETURN(key, String(f, where));
          if (!IsCacheKey(key)) {
            return Error(f.line, absl::StrCat("bad cache key ", Quote(key), " ", where,
                                              ": use letters, digits, '.', '_' and '-'"));
          }
        } else {
          if (!f.value.IsSequence()) {
            return Error(f.line, absl::StrCat("\"key_files\" ", where,
                                              " must be a list of file names, got ",
                                              Describe(f.value)));
          }
          for (const YAML::Node& item : f.value) {
            int line = LineOf(item, f.line);
            if (!item.IsScalar() || item.Scalar().empty()) {
              return Error(line, absl::StrCat("\"key_files\" ", where,
                                              " must list file names, got ", Describe(item)));
            }
            key_files.emplace_back(item.Scalar(), line);
          }
        }
      }
    }
    if (!key_files.empty()) {
      // The paths are hashed as written, not as resolved, so the key does not depend on
      // where the repository is checked out.
      Sha256 hash;
      for (const auto& [path, line] : key_files) {
        std::string full = (fs::path(base_dir_) / path).string();
        absl::StatusOr<std::string> contents = ReadWholeFile(full);
        if (!contents.ok()) {
          return Error(line, absl::StrCat("cannot read key file ", Quote(path), " ", where,
                                          ": ", contents.status().message()));
        }
        hash.Update(path);
        hash.Update(std::string_view("\0", 1));
        hash.Update(*contents);
        hash.Update(std::string_view("\0", 1));
      }
      key = absl::StrCat(key.empty() ? c.key : key, "-", hash.HexDigest().substr(0, 16));
    }
    v1::CacheSpec* spec = out_.pipeline.add_caches();
    spec->set_name(c.key);
    spec->set_key(key);
    cache_names_.insert(c.key);
  }
  return absl::OkStatus();
}

}  // namespace pipeline_internal

using pipeline_internal::kDurationHint;
using pipeline_internal::Parser;
using pipeline_internal::Quote;
using pipeline_internal::ReadWholeFile;

absl::StatusOr<PipelineFile> ParsePipeline(std::string_view yaml, const std::string& file_name,
                                           const std::string& base_dir, const ParseLimits& limits) {
  // Every string of a pipeline travels in protobuf `string` fields: UTF-8 only,
  // and small enough for every gRPC hop (the whole run is one message).
  if (yaml.size() > limits.max_file_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": ", yaml.size(), " bytes; a pipeline file may hold at most ",
                                                   limits.max_file_bytes,
                                                   " (--max_pipeline_bytes; scripts belong in the source tree)"));
  }
  if (size_t bad = InvalidUtf8At(yaml); bad != std::string_view::npos) {
    const size_t line = 1 + static_cast<size_t>(std::count(yaml.begin(), yaml.begin() + bad, '\n'));
    const size_t line_start = yaml.rfind('\n', bad == 0 ? 0 : bad - 1);
    const size_t column = line_start == std::string_view::npos || bad == 0 ? bad + 1 : bad - line_start;
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s:%d: byte 0x%02x at column %d is not UTF-8 text; pipeline files must be UTF-8", file_name, line,
        static_cast<unsigned char>(yaml[bad]), column));
  }
  // yaml-cpp reports everything by exception; none may leave this function.
  try {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::DeepRecursion& e) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ":", e.mark.line + 1, ": nested more than ",
                                                     e.depth() - 1, " levels deep; a pipeline needs a handful"));
    } catch (const YAML::ParserException& e) {
      int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ":", line, ": invalid YAML: ", e.msg));
    }
    Parser parser(file_name, base_dir, limits);
    return parser.Parse(root);
  } catch (const YAML::Exception& e) {
    int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
    return absl::InvalidArgumentError(absl::StrCat(file_name, ":", line, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": ", e.what()));
  }
}

absl::StatusOr<PipelineFile> ParsePipelineFile(const std::string& path, const ParseLimits& limits) {
  std::error_code ec;
  if (const auto size = fs::file_size(path, ec); !ec && size > limits.max_file_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes; a pipeline file may hold at most ",
                                                   limits.max_file_bytes,
                                                   " (--max_pipeline_bytes; scripts belong in the source tree)"));
  }
  absl::StatusOr<std::string> yaml = ReadWholeFile(path);
  if (!yaml.ok()) {
    return absl::Status(yaml.status().code(),
                        absl::StrCat("cannot read pipeline file ", yaml.status().message()));
  }
  std::string base_dir = fs::path(path).parent_path().string();
  if (base_dir.empty()) base_dir = ".";
  return ParsePipeline(*yaml, path, base_dir, limits);
}

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text_in) {
  // Debian's Abseil has its own string_view type.
  absl::string_view text(text_in.data(), text_in.size());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad duration ", Quote(text), ": ", why));
  };
  std::string trimmed(absl::StripAsciiWhitespace(text));
  // absl::ParseDuration accepts a bare "0" and would report "10" only as unparsable;
  // a missing unit is the common mistake, so it gets its own hint.
  bool bare_number = !trimmed.empty();
  for (char c : trimmed) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '+') {
      bare_number = false;
    }
  }
  if (trimmed.empty() || bare_number) return bad(kDurationHint);
  absl::Duration d;
  if (!absl::ParseDuration(trimmed, &d)) {
    return bad("use a number with a unit (ms, s, m, h), e.g. 90s, 10m, 1h30m");
  }
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return bad("must be finite, e.g. 90s, 10m, 1h30m");
  }
  if (d <= absl::ZeroDuration()) return bad("must be positive, e.g. 90s, 10m, 1h30m");
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms == 0) return bad("must be at least 1ms");
  return ms;
}

}  // namespace dockyard
