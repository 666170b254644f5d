#include "common/stage_graph.h"

#include <set>
#include "absl/strings/string_view.h"
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

const std::string kNoFile = "pipeline";

// Pipelines that came over the wire may carry neither file nor lines.
absl::Status StageError(const v1::Pipeline& pipeline, const v1::Stage& stage,
                        absl::string_view message) {
  if (stage.line() > 0) {
    const std::string& file = pipeline.file().empty() ? kNoFile : pipeline.file();
    return absl::InvalidArgumentError(absl::StrCat(file, ":", stage.line(), ": ", message));
  }
  return absl::InvalidArgumentError(absl::StrCat("pipeline: ", message));
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// needs[i] = indices of the stages stage i needs; valid only after the checks in
// ValidateStageGraph have passed the names.
std::vector<std::vector<int>> NeedIndices(const v1::Pipeline& pipeline,
                                          const std::unordered_map<std::string, int>& index) {
  std::vector<std::vector<int>> needs(pipeline.stages_size());
  for (int i = 0; i < pipeline.stages_size(); ++i) {
    for (const std::string& need : pipeline.stages(i).needs()) needs[i].push_back(index.at(need));
  }
  return needs;
}

// Iterative so that a hostile pipeline with a very long chain of needs cannot
// exhaust the stack of the controller.
absl::Status CheckAcyclic(const v1::Pipeline& pipeline,
                          const std::vector<std::vector<int>>& needs) {
  enum Color { kWhite, kGray, kBlack };
  std::vector<Color> color(needs.size(), kWhite);
  for (size_t root = 0; root < needs.size(); ++root) {
    if (color[root] != kWhite) continue;
    // The DFS path: (stage, index of the next need to visit).
    std::vector<std::pair<int, size_t>> path{{static_cast<int>(root), 0}};
    color[root] = kGray;
    while (!path.empty()) {
      auto& [stage, next] = path.back();
      if (next == needs[stage].size()) {
        color[stage] = kBlack;
        path.pop_back();
        continue;
      }
      int need = needs[stage][next++];
      if (color[need] == kWhite) {
        color[need] = kGray;
        path.emplace_back(need, 0);
        continue;
      }
      if (color[need] == kBlack) continue;
      // `need` is on the path: the cycle runs from there to here and back. It is
      // reported from its earliest stage in the file so the message does not depend
      // on where the search happened to enter it.
      std::vector<int> cycle;
      size_t start = 0;
      while (path[start].first != need) ++start;
      for (size_t i = start; i < path.size(); ++i) cycle.push_back(path[i].first);
      size_t first = 0;
      for (size_t i = 1; i < cycle.size(); ++i) {
        if (cycle[i] < cycle[first]) first = i;
      }
      std::vector<std::string> names;
      for (size_t i = 0; i <= cycle.size(); ++i) {
        names.push_back(pipeline.stages(cycle[(first + i) % cycle.size()]).name());
      }
      const v1::Stage& reported = pipeline.stages(cycle[first]);
      return StageError(pipeline, reported,
                        absl::StrCat("stage ", Quote(reported.name()),
                                     " is part of a cycle in needs: ",
                                     absl::StrJoin(names, " -> ")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unordered_map<std::string, int>> CheckNames(const v1::Pipeline& pipeline) {
  std::unordered_map<std::string, int> index;
  for (int i = 0; i < pipeline.stages_size(); ++i) {
    const v1::Stage& stage = pipeline.stages(i);
    if (stage.name().empty()) {
      return StageError(pipeline, stage, absl::StrCat("stage #", i + 1, " has no name"));
    }
    auto [it, inserted] = index.emplace(stage.name(), i);
    if (!inserted) {
      const v1::Stage& first = pipeline.stages(it->second);
      std::string where = first.line() > 0 ? absl::StrCat("line ", first.line())
                                           : absl::StrCat("stage #", it->second + 1);
      return StageError(pipeline, stage,
                        absl::StrCat("duplicate stage name ", Quote(stage.name()),
                                     " (first defined at ", where, ")"));
    }
  }
  for (const v1::Stage& stage : pipeline.stages()) {
    std::set<absl::string_view> seen;
    for (const std::string& need : stage.needs()) {
      if (need == stage.name()) {
        return StageError(pipeline, stage,
                          absl::StrCat("stage ", Quote(stage.name()), " needs itself"));
      }
      if (!index.contains(need)) {
        return StageError(pipeline, stage,
                          absl::StrCat("stage ", Quote(stage.name()), " needs unknown stage ",
                                       Quote(need)));
      }
      if (!seen.insert(need).second) {
        return StageError(pipeline, stage,
                          absl::StrCat("stage ", Quote(stage.name()), " lists ", Quote(need),
                                       " twice in needs"));
      }
    }
  }
  return index;
}

}  // namespace

absl::Status ValidateStageGraph(const v1::Pipeline& pipeline) {
  ASSIGN_OR_RETURN(auto index, CheckNames(pipeline));
  return CheckAcyclic(pipeline, NeedIndices(pipeline, index));
}

absl::StatusOr<std::vector<std::string>> TopologicalOrder(const v1::Pipeline& pipeline) {
  ASSIGN_OR_RETURN(auto index, CheckNames(pipeline));
  std::vector<std::vector<int>> needs = NeedIndices(pipeline, index);
  RETURN_IF_ERROR(CheckAcyclic(pipeline, needs));

  // Kahn's algorithm, always taking the earliest ready stage in file order.
  std::vector<std::vector<int>> needed_by(needs.size());
  std::vector<size_t> waiting(needs.size());
  std::set<int> ready;
  for (size_t i = 0; i < needs.size(); ++i) {
    waiting[i] = needs[i].size();
    for (int need : needs[i]) needed_by[need].push_back(static_cast<int>(i));
    if (waiting[i] == 0) ready.insert(static_cast<int>(i));
  }
  std::vector<std::string> order;
  order.reserve(needs.size());
  while (!ready.empty()) {
    int stage = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(pipeline.stages(stage).name());
    for (int dependent : needed_by[stage]) {
      if (--waiting[dependent] == 0) ready.insert(dependent);
    }
  }
  return order;
}

}  // namespace dockyard
