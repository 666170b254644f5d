#include "agent/container_files.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/tar_io.h"

namespace dockyard {

std::string GlobRoot(const std::string& pattern) {
  const size_t glob = pattern.find_first_of("*?[");
  const std::string fixed = glob == std::string::npos ? pattern : pattern.substr(0, glob);
  const size_t slash = fixed.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return fixed.substr(0, slash);
}

absl::Status VisitContainerFiles(DockerClient& docker, const std::string& container, const std::string& pattern,
                                 int64_t max_bytes, const MatchVisitor& visit) {
  const std::string root = GlobRoot(pattern);
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  const int reading = ends[0], writing = ends[1];
  // The engine's side: its HTTP body goes into the socket as it comes. When the
  // reader stops early (an error, or the tar's end before its padding), sends fail
  // and the download is abandoned.
  std::atomic<bool> reader_gone{false};
  absl::Status engine;
  std::thread download([&] {
    engine = docker.StreamArchive(container, root, max_bytes, [&](std::string_view bytes) -> absl::Status {
      while (!bytes.empty()) {
        const ssize_t n = ::send(writing, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          reader_gone = true;
          return absl::CancelledError("the archive's reader stopped");
        }
        bytes.remove_prefix(static_cast<size_t>(n));
      }
      return absl::OkStatus();
    });
    ::shutdown(writing, SHUT_WR);
  });
  const std::string what = absl::StrCat("archive of ", root, " in container ", container);
  absl::Status visited;
  if (auto reader = tar_io::OpenStreamReader(reading, what); reader.ok()) {
    visited = VisitMatchingFiles(reader->get(), what, root, pattern, visit);
  } else {
    visited = reader.status();
  }
  ::shutdown(reading, SHUT_RDWR);  // unblocks the download if it still sends
  download.join();
  ::close(reading);
  ::close(writing);
  // The engine's own error says more than the tar it cut short (a missing path, the
  // size limit); the reader stopping it is no error of the engine's.
  if (!engine.ok() && !reader_gone) return engine;
  return visited;
}

}  // namespace dockyard
