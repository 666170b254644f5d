#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dockyard {
namespace {

absl::Status Errno(const std::string& path) {
  const int err = errno;
  const std::string why = absl::StrCat(path, ": ", std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(why) : absl::InternalError(why);
}

}  // namespace

absl::Status ErrnoInternal(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes, mode_t mode) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  // O_EXCL after an unlink: never reuse a file someone else may already hold open.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Errno(tmp);
  ::fchmod(fd, mode);  // the umask may have taken bits away; this is the mode asked for
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = Errno(tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = Errno(path);
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(path);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = Errno(path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::StatusOr<std::string> ReadFirstLine(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  std::string line = text->substr(0, text->find('\n'));
  absl::StripAsciiWhitespace(&line);
  if (line.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  return line;
}

int64_t TrimDirectory(const std::string& dir, int64_t max_bytes, const std::set<std::string>& keep) {
  if (max_bytes <= 0) return 0;
  struct File {
    std::string path;
    int64_t size;
    struct timespec used;
  };
  std::vector<File> files;
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    total += st.st_size;
    if (keep.count(entry.path().filename().string()) == 0) {
      files.push_back({entry.path().string(), static_cast<int64_t>(st.st_size), st.st_mtim});
    }
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
    return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec : a.used.tv_nsec < b.used.tv_nsec;
  });
  int64_t removed = 0;
  for (const File& file : files) {
    if (total - removed <= max_bytes) break;
    if (::unlink(file.path.c_str()) == 0) removed += file.size;
  }
  return removed;
}

}  // namespace dockyard
