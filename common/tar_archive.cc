#include "common/tar_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include "absl/strings/string_view.h"
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/tar_io.h"

namespace dockyard {
namespace {

using namespace tar_io;  // NOLINT: this file is what tar_io is for

constexpr char kIgnoreFile[] = ".dockyardignore";

// ---- .dockyardignore ----

struct IgnoreRule {
  std::vector<std::string> segments;
  bool negate = false;
  bool dir_only = false;
  bool anchored = false;  // matched against the whole path, not just the last component
};

bool MatchSegments(const std::vector<std::string>& pattern, size_t i,
                   const std::vector<absl::string_view>& path, size_t j) {
  if (i == pattern.size()) return j == path.size();
  if (pattern[i] == "**") {
    // A trailing "**" matches what is inside, not the directory itself (as in git).
    size_t min = i + 1 == pattern.size() ? j + 1 : j;
    for (size_t k = min; k <= path.size(); ++k) {
      if (MatchSegments(pattern, i + 1, path, k)) return true;
    }
    return false;
  }
  if (j == path.size()) return false;
  std::string name(path[j]);
  if (fnmatch(pattern[i].c_str(), name.c_str(), 0) != 0) return false;
  return MatchSegments(pattern, i + 1, path, j + 1);
}

class IgnoreRules {
 public:
  static absl::StatusOr<IgnoreRules> Load(const std::string& dir) {
    IgnoreRules rules;
    std::string path = absl::StrCat(dir, "/", kIgnoreFile);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return rules;
      return ErrnoError(errno, "cannot open", path);
    }
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    int err = errno;
    ::close(fd);
    if (n < 0) return ErrnoError(err, "cannot read", path);
    for (absl::string_view line : absl::StrSplit(text, '\n')) rules.AddLine(line);
    return rules;
  }

  bool Ignored(absl::string_view rel_path, bool is_dir) const {
    std::vector<absl::string_view> path = absl::StrSplit(rel_path, '/');
    std::vector<absl::string_view> base{path.back()};
    bool ignored = false;
    for (const IgnoreRule& rule : rules_) {
      if (rule.dir_only && !is_dir) continue;
      if (MatchSegments(rule.segments, 0, rule.anchored ? path : base, 0)) ignored = !rule.negate;
    }
    return ignored;
  }

 private:
  void AddLine(absl::string_view line) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') return;
    IgnoreRule rule;
    if (line.front() == '!') {
      rule.negate = true;
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      rule.dir_only = true;
      while (!line.empty() && line.back() == '/') line.remove_suffix(1);
    }
    // As in git, a slash anywhere but at the end ties the pattern to the root.
    rule.anchored = line.find('/') != absl::string_view::npos;
    for (absl::string_view part : absl::StrSplit(line, '/', absl::SkipEmpty())) {
      rule.segments.emplace_back(part);
    }
    if (rule.segments.empty()) return;
    rules_.push_back(std::move(rule));
  }

  std::vector<IgnoreRule> rules_;
};

// ---- PackDirectory ----

class Packer {
 public:
  Packer(archive* w, const IgnoreRules& rules, std::string out_path, dev_t skip_dev,
         ino_t skip_ino)
      : w_(w), rules_(rules), out_path_(std::move(out_path)), skip_dev_(skip_dev),
        skip_ino_(skip_ino) {}

  absl::Status Walk(const std::string& abs_dir, const std::string& rel_dir) {
    std::vector<std::string> names;
    {
      DIR* d = ::opendir(abs_dir.c_str());
      if (d == nullptr) return ErrnoError(errno, "cannot open directory", abs_dir);
      errno = 0;
      while (dirent* ent = ::readdir(d)) {
        absl::string_view name = ent->d_name;
        if (name != "." && name != "..") names.emplace_back(name);
      }
      int err = errno;
      ::closedir(d);
      if (err != 0) return ErrnoError(err, "cannot list directory", abs_dir);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      std::string abs = absl::StrCat(abs_dir, "/", name);
      std::string rel = rel_dir.empty() ? name : absl::StrCat(rel_dir, "/", name);
      struct stat st;
      if (::lstat(abs.c_str(), &st) != 0) return ErrnoError(errno, "cannot stat", abs);
      bool is_dir = S_ISDIR(st.st_mode);
      if (!is_dir && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) continue;  // sockets, fifos, devices
      if (name == ".git") continue;
      if (st.st_dev == skip_dev_ && st.st_ino == skip_ino_) continue;  // the tar being written
      if (rules_.Ignored(rel, is_dir)) continue;
      RETURN_IF_ERROR(AddEntry(abs, rel, st));
      if (is_dir) RETURN_IF_ERROR(Walk(abs, rel));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status AddEntry(const std::string& abs, const std::string& rel, const struct stat& st) {
    Entry e(archive_entry_new());
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    std::string target;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
      archive_entry_set_size(e.get(), 0);
    } else if (S_ISLNK(st.st_mode)) {
      std::vector<char> buf(static_cast<size_t>(st.st_size) + 1);
      ssize_t n = ::readlink(abs.c_str(), buf.data(), buf.size());
      if (n < 0) return ErrnoError(errno, "cannot read symlink", abs);
      if (static_cast<size_t>(n) >= buf.size()) {
        return absl::AbortedError(absl::StrCat("symlink ", abs, " changed while packing"));
      }
      target.assign(buf.data(), static_cast<size_t>(n));
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_symlink(e.get(), target.c_str());
      archive_entry_set_size(e.get(), 0);
    } else {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
    }
    if (Failed(archive_write_header(w_, e.get()))) return WriteError(w_, out_path_);
    if (S_ISREG(st.st_mode)) RETURN_IF_ERROR(WriteFileData(abs, st.st_size));
    if (Failed(archive_write_finish_entry(w_))) return WriteError(w_, out_path_);
    return absl::OkStatus();
  }

  absl::Status WriteFileData(const std::string& abs, off_t size) {
    int fd = ::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open", abs);
    char buf[kBufferSize];
    off_t total = 0;
    absl::Status status;
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = ErrnoError(errno, "cannot read", abs);
        break;
      }
      if (n == 0) break;
      total += n;
      if (archive_write_data(w_, buf, static_cast<size_t>(n)) < 0) {
        status = WriteError(w_, out_path_);
        break;
      }
    }
    ::close(fd);
    RETURN_IF_ERROR(status);
    // The header already promised `size` bytes; a file that grew or shrank would be
    // silently cut or zero-padded, and the digest would describe neither version.
    if (total != size) {
      return absl::AbortedError(absl::StrCat(abs, " changed size while packing"));
    }
    return absl::OkStatus();
  }

  archive* w_;
  const IgnoreRules& rules_;
  std::string out_path_;
  dev_t skip_dev_;
  ino_t skip_ino_;
};

// "srv/app/" -> {"srv", "app"}.
absl::StatusOr<std::vector<std::string>> PrefixComponents(absl::string_view prefix) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(prefix, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("bad tar prefix \"", prefix, "\""));
    }
    parts.emplace_back(part);
  }
  return parts;
}

}  // namespace

absl::Status PackDirectory(const std::string& dir, const std::string& out_path) {
  struct stat root;
  if (::stat(dir.c_str(), &root) != 0) return ErrnoError(errno, "cannot stat", dir);
  if (!S_ISDIR(root.st_mode)) return absl::InvalidArgumentError(absl::StrCat(dir, " is not a directory"));
  ASSIGN_OR_RETURN(IgnoreRules rules, IgnoreRules::Load(dir));

  AtomicFile out(out_path);
  RETURN_IF_ERROR(out.Open());
  struct stat tmp;
  if (::fstat(out.fd(), &tmp) != 0) return ErrnoError(errno, "cannot stat", out_path + ".tmp");
  ASSIGN_OR_RETURN(ArchiveWriter w, OpenWriter(out.fd(), out_path));
  Packer packer(w.get(), rules, out_path, tmp.st_dev, tmp.st_ino);
  RETURN_IF_ERROR(packer.Walk(dir, ""));
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out_path);
  return out.Commit();
}

namespace {

// Copies every entry of `r` to `w` under the name `rename` gives its cleaned name
// (and its hard link target's); an entry it gives no name is left out. Returns how
// many entries were copied.
using EntryRename = std::function<absl::StatusOr<std::optional<std::string>>(const std::string&)>;
absl::StatusOr<int64_t> CopyRenamed(archive* r, const std::string& in_path, archive* w, const std::string& out_path,
                                    const EntryRename& rename) {
  int64_t copied = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(r, &e);
    if (rc == ARCHIVE_EOF) break;
    if (Failed(rc)) return ReadError(r, in_path);
    ASSIGN_OR_RETURN(std::string name, CleanEntryName(PathnameOf(e)));
    ASSIGN_OR_RETURN(std::optional<std::string> renamed, rename(name));
    if (!renamed) continue;
    archive_entry_set_pathname(e, renamed->c_str());
    if (std::string link = HardlinkOf(e); !link.empty()) {
      ASSIGN_OR_RETURN(std::string clean_link, CleanEntryName(link));
      ASSIGN_OR_RETURN(std::optional<std::string> target, rename(clean_link));
      if (!target) {
        return absl::InvalidArgumentError(absl::StrCat(name, " is a hard link to ", clean_link, ", which is left out"));
      }
      archive_entry_set_hardlink(e, target->c_str());
    }
    if (Failed(archive_write_header(w, e))) return WriteError(w, out_path);
    if (archive_entry_size(e) > 0) RETURN_IF_ERROR(CopyData(r, in_path, w, out_path));
    if (Failed(archive_write_finish_entry(w))) return WriteError(w, out_path);
    ++copied;
  }
  return copied;
}

}  // namespace

absl::Status PrefixTar(const std::string& in_path, const std::string& prefix,
                       const std::string& out_path) {
  ASSIGN_OR_RETURN(std::vector<std::string> components, PrefixComponents(prefix));
  ASSIGN_OR_RETURN(ArchiveReader r, OpenReader(in_path));
  AtomicFile out(out_path);
  RETURN_IF_ERROR(out.Open());
  ASSIGN_OR_RETURN(ArchiveWriter w, OpenWriter(out.fd(), out_path));

  std::string root;
  for (const std::string& component : components) {
    root = root.empty() ? component : absl::StrCat(root, "/", component);
    Entry dir(archive_entry_new());
    archive_entry_set_pathname(dir.get(), root.c_str());
    archive_entry_set_filetype(dir.get(), AE_IFDIR);
    archive_entry_set_perm(dir.get(), 0755);
    archive_entry_set_uid(dir.get(), 0);
    archive_entry_set_gid(dir.get(), 0);
    archive_entry_set_mtime(dir.get(), 0, 0);
    if (Failed(archive_write_header(w.get(), dir.get()))) return WriteError(w.get(), out_path);
  }
  // The tar's own root ("./") is the innermost prefix directory written above.
  auto prefixed = [&](const std::string& name) -> absl::StatusOr<std::optional<std::string>> {
    if (name.empty()) return std::nullopt;
    return root.empty() ? name : absl::StrCat(root, "/", name);
  };
  RETURN_IF_ERROR(CopyRenamed(r.get(), in_path, w.get(), out_path, prefixed).status());
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out_path);
  return out.Commit();
}

absl::Status SubtreeTar(const std::string& in_path, const std::string& dir, const std::string& out_path) {
  ASSIGN_OR_RETURN(std::string root, CleanEntryName(dir == "." ? "" : dir));
  ASSIGN_OR_RETURN(ArchiveReader r, OpenReader(in_path));
  AtomicFile out(out_path);
  RETURN_IF_ERROR(out.Open());
  ASSIGN_OR_RETURN(ArchiveWriter w, OpenWriter(out.fd(), out_path));
  // The name below `root`; nothing for an entry outside it, or for root itself.
  auto below = [&](const std::string& name) -> absl::StatusOr<std::optional<std::string>> {
    if (root.empty()) return name.empty() ? std::nullopt : std::optional<std::string>(name);
    if (name.rfind(root + "/", 0) == 0) return name.substr(root.size() + 1);
    return std::nullopt;
  };
  ASSIGN_OR_RETURN(int64_t copied, CopyRenamed(r.get(), in_path, w.get(), out_path, below));
  if (copied == 0) return absl::NotFoundError(absl::StrCat("nothing in the source tree below ", dir));
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out_path);
  return out.Commit();
}

absl::StatusOr<std::string> ReadTarFile(const std::string& in_path, const std::string& name, int64_t max_bytes) {
  ASSIGN_OR_RETURN(std::string wanted, CleanEntryName(name));
  ASSIGN_OR_RETURN(ArchiveReader r, OpenReader(in_path));
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (Failed(rc)) return ReadError(r.get(), in_path);
    ASSIGN_OR_RETURN(std::string entry, CleanEntryName(PathnameOf(e)));
    if (entry != wanted || archive_entry_filetype(e) != AE_IFREG) continue;
    if (archive_entry_size(e) > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(name, " is over ", max_bytes, " bytes"));
    }
    std::string content(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!content.empty() && archive_read_data(r.get(), content.data(), content.size()) !=
                                static_cast<la_ssize_t>(content.size())) {
      return ReadError(r.get(), in_path);
    }
    return content;
  }
  return absl::NotFoundError(absl::StrCat(name, " is not in the source tree"));
}

}  // namespace dockyard
