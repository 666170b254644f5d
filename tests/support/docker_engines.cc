#include "tests/support/docker_engines.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {

DockerEngine::DockerEngine(const std::vector<std::string>& images) {
  char tmpl[] = "/tmp/dye-XXXXXX";  // short: containerd's sockets live under the exec root
  dir_ = ::mkdtemp(tmpl);
  dockerd_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/sbin/dockerd", "--data-root=" + dir_ + "/data", "--exec-root=" + dir_ + "/exec",
                               "--pidfile=" + dir_ + "/dockerd.pid", "--host=" + host(), "--bridge=none",
                               "--iptables=false", "--ip6tables=false"},
      dir_ + "/dockerd.log");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!Answers()) {
    if (absl::Now() > deadline || !dockerd_->Running()) {
      throw std::runtime_error("extra dockerd did not answer:\n" + ReadFile(dir_ + "/dockerd.log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const std::string& image : images) {
    const std::string out = Shell(absl::StrCat("docker save ", image, " | docker -H ", host(), " load 2>&1"));
    if (out.find("Loaded image") == std::string::npos) {
      throw std::runtime_error("cannot load " + image + " into the extra engine: " + out);
    }
  }
}

DockerEngine::~DockerEngine() {
  if (dockerd_ && dockerd_->Running()) {
    // Its containers first (the agents are gone by now), then the engine itself.
    Shell(absl::StrCat("docker -H ", host(), " ps -aq | xargs -r docker -H ", host(), " rm -f >/dev/null 2>&1"));
    dockerd_->Signal(SIGTERM);
    if (dockerd_->Wait(absl::Seconds(20)) < 0) dockerd_->Signal(SIGKILL);
  }
  dockerd_.reset();
  // Overlay and bind mounts may outlive the daemon: unmount before removing.
  Shell(absl::StrCat("grep -o ' ", dir_, "[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null"));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string DockerEngine::Docker(const std::string& args) const {
  return Shell(absl::StrCat("docker -H ", host(), " ", args, " 2>&1"));
}

bool DockerEngine::Answers() const {
  return Shell(absl::StrCat("curl -sf --unix-socket ", dir_, "/docker.sock http://docker/_ping 2>/dev/null")) == "OK";
}

}  // namespace dockyard::testing
