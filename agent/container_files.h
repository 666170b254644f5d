// Reads the files an artifact pattern matches straight out of a container: the
// engine's archive of the pattern's directory streams through a socket pair into
// libarchive, so each file is handed over while it is read and never lands on disk.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "agent/docker_client.h"
#include "common/tar_matches.h"

namespace dockyard {

// The directory the engine is asked for: the pattern's leading components that hold
// no glob characters ("/wheelhouse/*.whl" -> "/wheelhouse").
std::string GlobRoot(const std::string& pattern);

// Calls `visit` for each regular file of `container` matching `pattern` (see
// VisitMatchingFiles), in archive order, on this thread. NOT_FOUND when the pattern's
// directory does not exist; RESOURCE_EXHAUSTED when its archive passes `max_bytes`
// (> 0). Stops at the first error, the visitor's included.
absl::Status VisitContainerFiles(DockerClient& docker, const std::string& container, const std::string& pattern,
                                 int64_t max_bytes, const MatchVisitor& visit);

}  // namespace dockyard
