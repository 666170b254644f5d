#include "agent/image_builder.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/tar_archive.h"

namespace dockyard {

namespace {

constexpr int64_t kMaxDockerfileBytes = 1 << 20;

}  // namespace

ImageBuilder::ImageBuilder(DockerClient* docker, SourceCache* sources, ImageCache* cache, std::string scratch_dir,
                           std::string agent_name, bool allow_network)
    : docker_(docker),
      sources_(sources),
      cache_(cache),
      scratch_dir_(std::move(scratch_dir)),
      agent_name_(std::move(agent_name)),
      allow_network_(allow_network) {}

std::string ImageBuilder::BaseImageIds(const std::string& dockerfile) {
  std::vector<std::string> ids;
  std::set<std::string> stages;  // `FROM x AS name`: a later `FROM name` is no image
  for (absl::string_view raw : absl::StrSplit(dockerfile, '\n')) {
    std::vector<std::string> words = absl::StrSplit(absl::StripAsciiWhitespace(raw), ' ', absl::SkipWhitespace());
    if (words.empty() || absl::AsciiStrToUpper(words[0]) != "FROM") continue;
    size_t i = 1;
    while (i < words.size() && absl::StartsWith(words[i], "--")) ++i;  // --platform=...
    if (i >= words.size()) continue;
    const std::string& image = words[i];
    const bool named = i + 2 < words.size() && absl::AsciiStrToUpper(words[i + 1]) == "AS";
    const bool earlier_stage = stages.count(image) != 0;
    if (named) stages.insert(words[i + 2]);
    if (earlier_stage) continue;
    if (absl::StrContains(image, "$")) continue;  // an ARG: its value is among the build arguments
    auto id = docker_->ImageId(image);
    ids.push_back(absl::StrCat(image, "=", id.ok() ? *id : "absent"));
  }
  return absl::StrJoin(ids, ",");
}

absl::StatusOr<BuiltImage> ImageBuilder::Ensure(const v1::ImageBuild& build, const std::string& source_digest,
                                                 const std::function<void(std::string_view)>& log) {
  if (source_digest.empty()) return absl::FailedPreconditionError("the image is built from the source, which is empty");
  ASSIGN_OR_RETURN(std::string source, sources_->Get(source_digest));
  absl::MutexLock lock(&mu_);
  // The whole source is the context, or a directory of it cut out into scratch.
  std::string context_tar = source;
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }
  } cleanup;
  std::string context_digest = source_digest;
  std::string inside = build.dockerfile();  // the Dockerfile's path in the context
  if (build.context() != ".") {
    context_tar = absl::StrCat(scratch_dir_, "/context-", source_digest.substr(0, 16), ".tar");
    cleanup.path = context_tar;
    absl::Status cut = SubtreeTar(source, build.context(), context_tar);
    if (absl::IsNotFound(cut)) {
      return absl::FailedPreconditionError(absl::StrCat("build context ", build.context(), " is not in the source"));
    }
    RETURN_IF_ERROR(cut);
    ASSIGN_OR_RETURN(context_digest, Sha256OfFile(context_tar));
    inside = inside.substr(build.context().size() + 1);
  }
  auto dockerfile = ReadTarFile(context_tar, inside, kMaxDockerfileBytes);
  if (absl::IsNotFound(dockerfile.status())) {
    return absl::FailedPreconditionError(absl::StrCat("no Dockerfile at ", build.dockerfile(), " in the source"));
  }
  RETURN_IF_ERROR(dockerfile.status());

  // Everything that decides what the build makes.
  std::vector<std::string> args;
  for (const auto& [key, value] : build.args()) args.push_back(absl::StrCat(key, "=", value));
  std::sort(args.begin(), args.end());
  const std::string inputs =
      absl::StrCat("context ", context_digest, "\ndockerfile ", inside, "\nargs ", absl::StrJoin(args, "\x1f"),
                   "\ntarget ", build.target(), "\nbases ", BaseImageIds(*dockerfile), "\nnetwork ",
                   allow_network_ ? "default" : "none", "\n");
  const std::string digest = Sha256Hex(inputs);
  const std::string tag = absl::StrCat(kBuiltImageRepository, ":", digest.substr(0, 32));
  ASSIGN_OR_RETURN(bool present, docker_->ImageExists(tag));
  if (present) {
    log(absl::StrCat("image ", tag, " reused: built before on this host from ", build.dockerfile(),
                     " with the same inputs"));
    return BuiltImage{tag, cache_->Use(tag)};
  }
  log(absl::StrCat("image ", tag, ": building from ", build.dockerfile(), " (context ", build.context(),
                   allow_network_ ? "" : ", no network", ")"));
  const absl::Time began = absl::Now();
  ImageBuildSpec spec;
  spec.context_tar = context_tar;
  spec.dockerfile = inside;
  spec.tag = tag;
  spec.args = {build.args().begin(), build.args().end()};
  spec.target = build.target();
  spec.network_mode = allow_network_ ? "default" : "none";
  spec.labels = {{"dockyard.built", digest}, {"dockyard.built-by", agent_name_}};
  RETURN_IF_ERROR(docker_->BuildImage(spec, [&](std::string_view line) { log("build: " + std::string(line)); }));
  log(absl::StrCat("image ", tag, " built in ",
                   absl::FormatDuration(absl::Trunc(absl::Now() - began, absl::Milliseconds(100)))));
  BuiltImage built{tag, cache_->Use(tag)};
  // Room for what was just built; a failure to evict never fails the stage.
  auto removed = cache_->Evict();
  if (!removed.ok()) log(absl::StrCat("image cache: cannot evict: ", removed.status().message()));
  for (const std::string& line : removed.ok() ? *removed : std::vector<std::string>{}) log(line);
  return built;
}

}  // namespace dockyard
