// The files of a Docker archive (GET /containers/{id}/archive) that an artifact
// pattern matches, handed over one by one while the tar streams past: the agent hashes
// and sends each as it is read, so nothing is copied to a scratch file first.
#pragma once

#include <archive.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace dockyard {

// One matching regular file. Its data is read with ReadEntryData before the visitor
// returns (what it leaves unread is skipped).
struct MatchedFile {
  std::string container_path;  // absolute path in the container, e.g. /wheelhouse/app-1.0.whl
  std::string name;            // its base name
  int64_t size = 0;            // as the tar header says
  // A hard link to an earlier matching file (its container path): no data follows.
  std::string hardlink_to;
};

using MatchVisitor = std::function<absl::Status(const MatchedFile& file, archive* data)>;

// Reads the tar `reader` (opened on Docker's archive of `archive_root`, whose entries
// are named after that path's last component) and calls `visit` for each regular file
// whose container path matches the glob `pattern` (fnmatch, FNM_PATHNAME), in archive
// order. `what` names the tar in errors. Entries with ".." or absolute names anywhere
// are INVALID_ARGUMENT, as are two matches with the same base name; a matching hard
// link whose target did not match is FAILED_PRECONDITION. Stops at the first error
// (the visitor's included).
absl::Status VisitMatchingFiles(archive* reader, absl::string_view what, const std::string& archive_root,
                                const std::string& pattern, const MatchVisitor& visit);

// Passes the current entry's data to `sink` in the pieces libarchive reads, and
// fails when they add up to other than `size` bytes.
absl::Status ReadEntryData(archive* reader, absl::string_view what, int64_t size,
                           const std::function<absl::Status(absl::string_view)>& sink);

}  // namespace dockyard
