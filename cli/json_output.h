// The CLI's --json output: documented, stable field names (README "Machine-readable
// output"); one JSON document per command on stdout.
#pragma once

#include <string>
#include <vector>

#include "dockyard/v1/run.pb.h"

namespace dockyard {

std::string RunJson(const v1::Run& run);
std::string CachesJson(const v1::ListCachesResponse& caches);
std::string ArtifactsJson(const std::string& run_id, const std::vector<v1::Artifact>& artifacts);
std::string AgentsJson(const std::vector<v1::AgentInfo>& agents);

}  // namespace dockyard
