// Small whole-file helpers shared by the daemons and the CLI: atomic writes (temp
// file, fsync, rename) with an explicit mode, so a secret is never readable by
// others even for a moment, and whole-file reads with a clear error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dockyard {

// INTERNAL "`what`: <errno's text>", for a system call that just failed.
absl::Status ErrnoInternal(const std::string& what);

// Writes `bytes` to `path` through a temp file created with `mode`, synced and
// renamed into place: readers see the old content or the new, never a mix.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes, mode_t mode = 0644);
// The whole file. NOT_FOUND when it does not exist; errors name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);
// The file's first line without surrounding white space (tokens, addresses).
// INVALID_ARGUMENT, naming the path, when it is empty.
absl::StatusOr<std::string> ReadFirstLine(const std::string& path);
// Removes the least recently modified regular files directly in `dir` (callers
// touch a file when they use it) until the rest hold at most `max_bytes`; files
// named in `keep` stay whatever they cost. Returns the bytes removed.
int64_t TrimDirectory(const std::string& dir, int64_t max_bytes, const std::set<std::string>& keep = {});

}  // namespace dockyard
