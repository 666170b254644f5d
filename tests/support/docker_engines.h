// Test support: extra Docker engines on this machine, so several "build hosts" can
// run in one test. Each is a dockerd with its own data root, exec root, pidfile and
// unix socket under a fresh /tmp directory, no bridge and no iptables changes, with
// the test images loaded from the main engine (`docker save | docker load`). The
// destructor stops the engine, unmounts and removes everything it made.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace dockyard::testing {

class Process;

class DockerEngine {
 public:
  // Starts an engine and loads `images` into it; throws std::runtime_error (with
  // the engine's log) when it does not come up.
  explicit DockerEngine(const std::vector<std::string>& images = {"dockyard/busybox"});
  ~DockerEngine();
  DockerEngine(const DockerEngine&) = delete;
  DockerEngine& operator=(const DockerEngine&) = delete;

  // As DOCKER_HOST / --docker_host take it: unix:///tmp/dye-XXXXXX/docker.sock
  std::string host() const { return "unix://" + dir_ + "/docker.sock"; }
  const std::string& dir() const { return dir_; }
  // Output of `docker -H host ARGS` (stderr included).
  std::string Docker(const std::string& args) const;
  bool Answers() const;

 private:
  std::string dir_;
  std::unique_ptr<Process> dockerd_;
};

}  // namespace dockyard::testing
