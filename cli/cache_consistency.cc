#include "cli/cache_consistency.h"

#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace dockyard {

bool UsesCaches(const v1::Run& run) {
  for (const v1::StageInfo& stage : run.stages()) {
    if (stage.caches_size() > 0) return true;
  }
  return false;
}

std::vector<std::string> CacheInconsistencies(const v1::Run& run) {
  std::map<std::string, const v1::StageInfo*> by_name;
  for (const v1::StageInfo& stage : run.stages()) by_name[stage.name()] = &stage;
  // Every stage `name` needs, directly or not.
  std::function<void(const std::string&, std::set<std::string>&)> ancestors = [&](const std::string& name,
                                                                                 std::set<std::string>& out) {
    auto it = by_name.find(name);
    if (it == by_name.end()) return;
    for (const std::string& need : it->second->needs()) {
      if (out.insert(need).second) ancestors(need, out);
    }
  };
  std::vector<std::string> problems;
  for (const v1::StageInfo& stage : run.stages()) {
    for (const v1::CacheDigests& cache : stage.caches()) {
      std::set<std::string> before;
      ancestors(stage.name(), before);
      const v1::StageInfo* producer = nullptr;
      const v1::CacheDigests* produced = nullptr;
      for (const std::string& name : before) {
        const v1::StageInfo* candidate = by_name[name];
        if (candidate->state() != v1::STAGE_SUCCEEDED) continue;
        for (const v1::CacheDigests& c : candidate->caches()) {
          // A producer changed the cache (a read-only consumer hands on what it got).
          if (c.name() != cache.name() || c.produced().empty() || c.produced() == c.consumed()) continue;
          if (producer == nullptr || candidate->finished_unix_ms() > producer->finished_unix_ms()) {
            producer = candidate;
            produced = &c;
          }
        }
      }
      if (producer != nullptr && produced->produced() != cache.consumed()) {
        problems.push_back(absl::StrCat("stage ", stage.name(), " consumed cache ", cache.name(), " ",
                                        cache.consumed().empty() ? "empty" : cache.consumed(), " but stage ",
                                        producer->name(), " produced ", produced->produced()));
      }
    }
  }
  return problems;
}

}  // namespace dockyard
