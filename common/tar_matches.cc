#include "common/tar_matches.h"

#include <archive_entry.h>
#include <fnmatch.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tar_io.h"

namespace dockyard {

using namespace tar_io;  // NOLINT(build/namespaces): the plumbing this file is built on

absl::Status VisitMatchingFiles(archive* reader, absl::string_view what, const std::string& archive_root,
                                const std::string& pattern, const MatchVisitor& visit) {
  if (archive_root.empty() || archive_root.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("archive root \"", archive_root, "\" is not an absolute path"));
  }
  // Docker names entries after the last component of archive_root, so container
  // paths are the entry names below archive_root's parent.
  absl::string_view root = archive_root;
  while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  const std::string parent(root.substr(0, root.rfind('/')));

  std::map<std::string, std::string> path_by_name;  // base name -> container path
  std::set<std::string> matched;                    // container paths visited
  for (;;) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(reader, &e);
    if (rc == ARCHIVE_EOF) return absl::OkStatus();
    if (Failed(rc)) return ReadError(reader, what);
    ASSIGN_OR_RETURN(std::string name, CleanEntryName(PathnameOf(e)));
    std::string link = HardlinkOf(e);
    if (!link.empty()) {
      ASSIGN_OR_RETURN(link, CleanEntryName(link));
    }
    // A hard link's own type is not reliably "regular file"; it names one that is.
    if (name.empty() || (link.empty() && archive_entry_filetype(e) != AE_IFREG)) continue;
    MatchedFile file;
    file.container_path = absl::StrCat(parent, "/", name);
    if (fnmatch(pattern.c_str(), file.container_path.c_str(), FNM_PATHNAME) != 0) continue;
    file.name = name.substr(name.rfind('/') + 1);
    auto [it, fresh] = path_by_name.emplace(file.name, file.container_path);
    if (!fresh) {
      return absl::InvalidArgumentError(absl::StrCat("\"", pattern, "\" matches two files named \"", file.name,
                                                     "\": ", it->second, " and ", file.container_path));
    }
    file.size = archive_entry_size(e);
    if (!link.empty()) {
      file.hardlink_to = absl::StrCat(parent, "/", link);
      if (!matched.contains(file.hardlink_to)) {
        return absl::FailedPreconditionError(absl::StrCat(file.container_path, " is a hard link to ",
                                                          file.hardlink_to, ", which does not match \"", pattern,
                                                          "\""));
      }
    }
    matched.insert(file.container_path);
    RETURN_IF_ERROR(visit(file, reader));
  }
}

absl::Status ReadEntryData(archive* reader, absl::string_view what, int64_t size,
                           const std::function<absl::Status(absl::string_view)>& sink) {
  int64_t total = 0;
  for (;;) {
    const void* block = nullptr;
    size_t length = 0;
    la_int64_t offset = 0;
    const int rc = archive_read_data_block(reader, &block, &length, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (Failed(rc)) return ReadError(reader, what);
    // A sparse entry's holes are zeros the blocks skip over.
    static const std::string kZeros(kBufferSize, '\0');
    while (total < offset) {
      const int64_t gap = std::min<int64_t>(offset - total, static_cast<int64_t>(kZeros.size()));
      RETURN_IF_ERROR(sink(absl::string_view(kZeros.data(), static_cast<size_t>(gap))));
      total += gap;
    }
    RETURN_IF_ERROR(sink(absl::string_view(static_cast<const char*>(block), length)));
    total += static_cast<int64_t>(length);
  }
  if (total != size) {
    return absl::DataLossError(absl::StrCat(what, ": an entry said ", size, " bytes and held ", total));
  }
  return absl::OkStatus();
}

}  // namespace dockyard
