// Tar streams (libarchive): packing a source tree, re-rooting it for a container,
// and pulling artifact files out of what Docker's archive endpoint returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dockyard {

// Writes an uncompressed tar of everything below `dir` to `out_path`, skipping what
// `dir/.dockyardignore` excludes. Deterministic: a depth-first walk with each
// directory's names in byte order (a directory precedes its contents), owner 0:0, no
// user or group names, mtimes in whole seconds, so the same tree gives the same bytes
// and therefore the same digest. Keeps modes. Symlinks are stored as symlinks (never
// followed), hard links as separate files; sockets, fifos and devices are skipped.
// Written to `out_path.tmp`, then renamed onto `out_path`.
//
// The `.dockyardignore` subset (gitignore semantics where supported; only the file at
// the root of `dir` is read, and it is itself packed unless a rule excludes it):
//   - one pattern per line; blank lines and lines starting with `#` are ignored;
//     trailing whitespace is dropped;
//   - `*`, `?`, `[...]` as in fnmatch, never crossing `/`; `\` escapes the next
//     character (so `\#` and `\!` match a leading `#` or `!`);
//   - `**` as a whole path component matches any number of components (`**/x`,
//     `a/**/b`, `a/**` = everything inside a);
//   - a pattern without `/` matches the last component at any depth (`*.pyc`,
//     `node_modules`); a `/` at the start or in the middle anchors it at the root
//     (`/build`, `docs/tmp`);
//   - a trailing `/` matches directories only (`build/`);
//   - `!pattern` re-includes what an earlier line excluded; the last matching line
//     wins, and, as in git, nothing below an excluded directory can be re-included
//     because that directory is not entered;
//   - an excluded directory is skipped with everything below it;
//   - `.git` (at any depth) is always skipped.
absl::Status PackDirectory(const std::string& dir, const std::string& out_path);

// Copies the tar at `in_path` to `out_path` with every entry moved below `prefix`
// (e.g. "application/" or "srv/app/"), preceded by directory entries for each
// component of `prefix`. Lets a source tree be uploaded to "/" of a container whose
// workdir does not exist yet. The added directories are 0755, owned by 0:0, mtime 0
// (so the output stays deterministic); hard link targets are prefixed too; a root
// entry ("./") is dropped. Prefixes or entries with ".." or absolute names are
// INVALID_ARGUMENT. Written to `out_path.tmp`, then renamed onto `out_path`.
absl::Status PrefixTar(const std::string& in_path, const std::string& prefix,
                       const std::string& out_path);

// Copies the entries of the tar at `in_path` below directory `dir` (a relative path,
// "." for all) to `out_path`, re-rooted at `dir` (e.g. a build context cut out of a
// source tree). Entries keep their order, so the output is as deterministic as the
// input. NOT_FOUND when nothing lies below `dir`. Hard links leaving `dir` are
// INVALID_ARGUMENT.
absl::Status SubtreeTar(const std::string& in_path, const std::string& dir, const std::string& out_path);
// The content of the regular file `name` (a relative path) in the tar at `in_path`.
// NOT_FOUND when it is not there; RESOURCE_EXHAUSTED when it is over `max_bytes`.
absl::StatusOr<std::string> ReadTarFile(const std::string& in_path, const std::string& name, int64_t max_bytes);

}  // namespace dockyard
