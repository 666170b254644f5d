// The pipeline parser's insides, shared by its two files: pipeline_parser.cc (the
// file, top-level keys, caches) and stage_parser.cc (one stage). Not an API.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/pipeline_parser.h"

namespace dockyard::pipeline_internal {

inline constexpr char kDefaultWorkdir[] = "/workspace";
inline constexpr int kMaxRetries = 10;
inline constexpr int kMaxServices = 10;
inline constexpr int64_t kDefaultReadyTimeoutMs = 60000;
inline constexpr char kDurationHint[] = "use a unit, e.g. 90s, 10m, 1h30m";

// Name rules of the pipeline format.
bool IsAsciiAlnum(char c);
bool IsPipelineName(absl::string_view s);
bool IsStageName(absl::string_view s);
bool IsCacheName(absl::string_view s);
bool IsCacheKey(absl::string_view s);
// Service names are host names inside the stage (`db:3306`) and parts of container names.
bool IsServiceName(absl::string_view s);
// For messages: the text in double quotes; what a node is ("a list", "\"x\"").
std::string Quote(absl::string_view s);
std::string Describe(const YAML::Node& node);

// One `key: value` of a YAML map. The key's line is kept because yaml-cpp marks an
// empty value (`image:`) at the next token, which can be lines further down.
struct Entry {
  std::string key;
  int line = 0;
  YAML::Node value;
};

class Parser {
 public:
  Parser(std::string file_name, std::string base_dir, ParseLimits limits)
      : file_(std::move(file_name)), base_dir_(std::move(base_dir)), limits_(limits) {}

  absl::StatusOr<PipelineFile> Parse(const YAML::Node& root);

 private:
  absl::Status Error(int line, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", line, ": ", message));
  }

  // 1-based; yaml-cpp leaves nodes it synthesised unmarked, for which `fallback` stands in.
  static int LineOf(const YAML::Node& node, int fallback) {
    int line = node.Mark().line;
    return line >= 0 ? line + 1 : fallback;
  }

  // Lists the entries of the map `node` (`where` reads like "in stage \"test\""),
  // refusing keys that are not scalars, appear twice, or are not in `allowed`.
  absl::StatusOr<std::vector<Entry>> Entries(const YAML::Node& node, int line,
                                             absl::string_view what, absl::string_view where,
                                             std::initializer_list<absl::string_view> allowed) const;

  absl::StatusOr<std::string> String(const Entry& e, absl::string_view where) const;
  absl::StatusOr<std::vector<std::string>> StringList(const Entry& e, absl::string_view where,
                                                      bool single_string_ok) const;

  absl::Status ParseCaches(const Entry& e);
  // `images:`: builds named once for several stages (`image: NAME`).
  absl::Status ParseImages(const Entry& e);
  absl::Status ParseStage(const YAML::Node& node, int index, v1::Stage* stage);
  // `env:` of the pipeline or of a stage.
  absl::Status ParseEnv(const Entry& e, absl::string_view where, google::protobuf::Map<std::string, std::string>* env);
  absl::Status ParseStageCaches(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseArtifacts(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseReports(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseStageLimits(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseAgent(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseInputs(const Entry& e, absl::string_view where, v1::Stage* stage);
  // `image: {build: {...}}`: an image the agent builds from the source tree.
  absl::Status ParseImageBuild(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseServices(const Entry& e, absl::string_view where, v1::Stage* stage);
  absl::Status ParseService(const YAML::Node& node, int line, absl::string_view where, v1::Service* service);

  std::string file_;
  std::string base_dir_;
  ParseLimits limits_;
  PipelineFile out_;
  std::set<std::string> cache_names_;
  std::map<std::string, v1::ImageBuild> declared_images_;
};

}  // namespace dockyard::pipeline_internal
