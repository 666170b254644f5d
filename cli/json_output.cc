#include "cli/json_output.h"

#include <nlohmann/json.hpp>

#include "cli/cache_consistency.h"
#include "cli/text.h"

namespace dockyard {

std::string RunJson(const v1::Run& run) {
  nlohmann::json stages = nlohmann::json::array();
  for (const v1::StageInfo& stage : run.stages()) {
    nlohmann::json caches = nlohmann::json::array();
    for (const v1::CacheDigests& c : stage.caches()) {
      caches.push_back({{"name", c.name()},
                        {"consumed", c.consumed()},
                        {"produced", c.produced()},
                        {"source", c.source()},
                        {"bytes", c.bytes()},
                        {"files", c.files()}});
    }
    stages.push_back({{"name", stage.name()},
                      {"caches", caches},
                      {"state", Word(stage.state())},
                      {"attempt", stage.attempt()},
                      {"agent", stage.agent()},
                      {"image", stage.image()},
                      {"image_id", stage.image_id()},
                      {"exit_code", stage.exit_code()},
                      {"message", stage.message()},
                      {"needs", std::vector<std::string>(stage.needs().begin(), stage.needs().end())},
                      {"started_unix_ms", stage.started_unix_ms()},
                      {"finished_unix_ms", stage.finished_unix_ms()}});
  }
  nlohmann::json out = {{"run_id", run.id()},
                        {"pipeline", run.pipeline_name()},
                        {"state", Word(run.state())},
                        {"message", run.message()},
                        {"owner", run.owner()},
                        {"created_unix_ms", run.created_unix_ms()},
                        {"finished_unix_ms", run.finished_unix_ms()},
                        {"stages", stages}};
  if (UsesCaches(run)) {
    const std::vector<std::string> problems = CacheInconsistencies(run);
    out["caches_consistent"] = problems.empty();
    out["cache_problems"] = problems;
  }
  return out.dump(2);
}

std::string CachesJson(const v1::ListCachesResponse& caches) {
  nlohmann::json list = nlohmann::json::array();
  for (const v1::CacheInfo& c : caches.caches()) {
    list.push_back({{"cache", c.cache()},
                    {"key", c.key()},
                    {"snapshot", c.snapshot()},
                    {"bytes", c.bytes()},
                    {"files", c.files()},
                    {"last_used_unix_ms", c.last_used_unix_ms()},
                    {"holder", c.holder()},
                    {"source", c.source()}});
  }
  return nlohmann::json({{"caches", list}, {"max_bytes", caches.max_bytes()}}).dump(2);
}

std::string ArtifactsJson(const std::string& run_id, const std::vector<v1::Artifact>& artifacts) {
  nlohmann::json list = nlohmann::json::array();
  for (const v1::Artifact& a : artifacts) {
    list.push_back({{"stage", a.stage()}, {"name", a.name()}, {"path", a.path()}, {"size", a.size()},
                    {"sha256", a.sha256()}});
  }
  return nlohmann::json{{"run_id", run_id}, {"artifacts", list}}.dump(2);
}

std::string AgentsJson(const std::vector<v1::AgentInfo>& agents) {
  nlohmann::json list = nlohmann::json::array();
  for (const v1::AgentInfo& agent : agents) {
    const char* state = !agent.connected() ? "disconnected" : agent.draining() ? "draining" : "connected";
    list.push_back({{"name", agent.name()},
                    {"state", state},
                    {"labels", std::vector<std::string>(agent.labels().begin(), agent.labels().end())},
                    {"slots", agent.slots()},
                    {"busy", agent.busy()},
                    {"version", agent.version()}});
  }
  return nlohmann::json{{"agents", list}}.dump(2);
}

}  // namespace dockyard
