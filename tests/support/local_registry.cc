#include "tests/support/local_registry.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"

namespace dockyard::testing {
namespace {

std::string RandomWord() {
  std::random_device rd;
  return absl::StrCat("pw-", rd(), "-", rd());
}

}  // namespace

LocalRegistry::LocalRegistry(bool with_login) {
  char tmpl[] = "/tmp/dyr-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  address_ = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  std::string config = absl::StrCat("version: 0.1\nlog: {level: info}\nstorage:\n  filesystem: {rootdirectory: ", dir_,
                                    "/data}\n  delete: {enabled: true}\nhttp:\n  addr: ", address_, "\n");
  if (with_login) {
    user_ = "ci-puller";
    password_ = RandomWord();
    // bcrypt, the only hash the registry takes; the password goes in on stdin.
    const std::string out = Shell(absl::StrCat("printf %s '", password_, "' | htpasswd -iBn ", user_, " > ", dir_,
                                               "/htpasswd && echo ok"));
    if (out != "ok\n") throw std::runtime_error("htpasswd failed: " + out);
    absl::StrAppend(&config, "auth:\n  htpasswd: {realm: dockyard-test, path: ", dir_, "/htpasswd}\n");
  }
  std::ofstream(dir_ + "/config.yml") << config;
  registry_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/docker-registry", "serve", dir_ + "/config.yml"}, dir_ + "/registry.log");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  // /v2/ answers 200, or 401 behind a login, once it listens.
  while (Shell(absl::StrCat("curl -s -o /dev/null -w '%{http_code}' http://", address_, "/v2/")) !=
         (with_login ? "401" : "200")) {
    if (absl::Now() > deadline || !registry_->Running()) throw std::runtime_error("registry did not answer:\n" + Log());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

LocalRegistry::~LocalRegistry() {
  if (registry_ && registry_->Running()) {
    registry_->Signal(SIGTERM);
    if (registry_->Wait(absl::Seconds(10)) < 0) registry_->Signal(SIGKILL);
  }
  registry_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string LocalRegistry::Push(const std::string& repository_and_tag, const std::string& marker) {
  const std::string ref = absl::StrCat(address_, "/", repository_and_tag);
  const std::string config = dir_ + "/docker-config";  // the CLI's login stays here, not in ~/.docker
  std::string script = absl::StrCat("set -e; printf 'FROM dockyard/busybox\\nRUN echo ", marker,
                                    " > /marker\\n' | DOCKER_BUILDKIT=0 docker build --network none -q -t ", ref,
                                    " - >/dev/null; ");
  if (!user_.empty()) {
    absl::StrAppend(&script, "printf %s '", password_, "' | docker --config ", config, " login -u ", user_,
                    " --password-stdin ", address_, " >/dev/null 2>&1; ");
  }
  absl::StrAppend(&script, "docker --config ", config, " push ", ref, " >/dev/null; docker rmi ", ref,
                  " >/dev/null; echo pushed");
  const std::string out = Shell("(" + script + ") 2>&1");
  if (out.find("pushed\n") == std::string::npos) throw std::runtime_error("cannot push " + ref + ": " + out);
  return ref;
}

std::string LocalRegistry::Log() const { return ReadFile(dir_ + "/registry.log"); }

}  // namespace dockyard::testing
