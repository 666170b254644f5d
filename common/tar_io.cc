#include "common/tar_io.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace dockyard::tar_io {

absl::Status ErrnoError(int err, absl::string_view what, absl::string_view path) {
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string ArchiveMessage(archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown libarchive error";
}

bool Failed(int r) { return r < ARCHIVE_WARN; }

absl::StatusOr<ArchiveWriter> OpenWriter(int fd, absl::string_view path) {
  ArchiveWriter w(archive_write_new());
  if (w == nullptr) return absl::ResourceExhaustedError("archive_write_new failed");
  // pax_restricted writes plain ustar headers and adds a pax header only for what
  // ustar cannot hold (long names, big files), which keeps output small and portable.
  if (archive_write_set_format_pax_restricted(w.get()) != ARCHIVE_OK ||
      archive_write_add_filter_none(w.get()) != ARCHIVE_OK ||
      archive_write_open_fd(w.get(), fd) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("cannot write tar ", path, ": ", ArchiveMessage(w.get())));
  }
  return w;
}

absl::StatusOr<ArchiveReader> OpenReader(const std::string& path) {
  ArchiveReader r(archive_read_new());
  if (r == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
  archive_read_support_format_tar(r.get());
  archive_read_support_filter_none(r.get());
  if (archive_read_open_filename(r.get(), path.c_str(), kBufferSize) != ARCHIVE_OK) {
    int err = archive_errno(r.get());
    if (err == ENOENT) return ErrnoError(err, "cannot open tar", path);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read tar ", path, ": ", ArchiveMessage(r.get())));
  }
  return r;
}

absl::StatusOr<ArchiveReader> OpenStreamReader(int fd, absl::string_view what) {
  ArchiveReader r(archive_read_new());
  if (r == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
  archive_read_support_format_tar(r.get());
  archive_read_support_filter_none(r.get());
  if (archive_read_open_fd(r.get(), fd, kBufferSize) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read tar ", what, ": ", ArchiveMessage(r.get())));
  }
  return r;
}

absl::Status ReadError(archive* r, absl::string_view path) {
  return absl::InvalidArgumentError(absl::StrCat("bad tar ", path, ": ", ArchiveMessage(r)));
}

absl::Status WriteError(archive* w, absl::string_view path) {
  return absl::InternalError(absl::StrCat("cannot write tar ", path, ": ", ArchiveMessage(w)));
}

std::string PathnameOf(archive_entry* e) {
  if (const char* name = archive_entry_pathname(e)) return name;
  if (const char* name = archive_entry_pathname_utf8(e)) return name;
  return "";
}

std::string HardlinkOf(archive_entry* e) {
  if (const char* name = archive_entry_hardlink(e)) return name;
  if (const char* name = archive_entry_hardlink_utf8(e)) return name;
  return "";
}

absl::StatusOr<std::string> CleanEntryName(absl::string_view name) {
  absl::string_view original = name;
  if (!name.empty() && name.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("tar entry \"", original, "\" has an absolute name"));
  }
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("tar entry \"", original, "\" contains \"..\""));
    }
    parts.push_back(part);
  }
  return absl::StrJoin(parts, "/");
}

absl::Status CopyData(archive* r, absl::string_view in_path, archive* w, absl::string_view out_path) {
  char buf[kBufferSize];
  for (;;) {
    la_ssize_t n = archive_read_data(r, buf, sizeof buf);
    if (n < 0) return ReadError(r, in_path);
    if (n == 0) return absl::OkStatus();
    if (archive_write_data(w, buf, static_cast<size_t>(n)) < 0) return WriteError(w, out_path);
  }
}

}  // namespace dockyard::tar_io
