// Test support: a real image registry (Debian's docker-registry) on 127.0.0.1, with
// its own storage in a fresh /tmp directory and, when asked, a login (an htpasswd
// file with a bcrypt hash, as the registry requires). The main engine reaches it
// over plain HTTP because Docker trusts registries on 127.0.0.0/8. The destructor
// stops it and removes everything it made.
#pragma once

#include <memory>
#include <string>

namespace dockyard::testing {

class Process;

class LocalRegistry {
 public:
  // Throws std::runtime_error (with the registry's log) when it does not come up.
  explicit LocalRegistry(bool with_login);
  ~LocalRegistry();
  LocalRegistry(const LocalRegistry&) = delete;
  LocalRegistry& operator=(const LocalRegistry&) = delete;

  // host:port, the registry part of an image reference.
  const std::string& address() const { return address_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  // Builds an image on the main engine from dockyard/busybox with `marker` in
  // /marker, pushes it as address()/REPOSITORY:TAG and removes it from the engine
  // again, so an agent must pull it. Returns the reference; throws on failure.
  std::string Push(const std::string& repository_and_tag, const std::string& marker);
  // The registry's own log (its access log included).
  std::string Log() const;

 private:
  std::string dir_;
  std::string address_;
  std::string user_;
  std::string password_;
  std::unique_ptr<Process> registry_;
};

}  // namespace dockyard::testing
