#include "common/controller_channel.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace dockyard {
namespace {

// "host:port" or "[v6]:port" -> host, port.
bool SplitHostPort(const std::string& address, std::string& host, std::string& port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !host.empty();
}

}  // namespace

absl::StatusOr<std::string> ControllerTarget(const std::string& addresses) {
  std::vector<std::string> entries;
  for (absl::string_view entry : absl::StrSplit(addresses, ',', absl::SkipWhitespace())) {
    entries.emplace_back(absl::StripAsciiWhitespace(entry));
  }
  if (entries.size() <= 1) return addresses;
  std::vector<std::string> v4;
  std::vector<std::string> v6;
  for (const std::string& entry : entries) {
    std::string host;
    std::string port;
    if (!SplitHostPort(entry, host, port)) {
      return absl::InvalidArgumentError(absl::StrCat("--controller: \"", entry, "\" is not host:port"));
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--controller: cannot resolve \"", host, "\""));
    }
    char text[INET6_ADDRSTRLEN] = {0};
    if (found->ai_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, text, sizeof text);
      v4.push_back(absl::StrCat(text, ":", port));
    } else {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr, text, sizeof text);
      v6.push_back(absl::StrCat("[", text, "]:", port));
    }
    ::freeaddrinfo(found);
  }
  // One scheme per target: IPv4 when any resolved so (the common case).
  return v4.empty() ? "ipv6:" + absl::StrJoin(v6, ",") : "ipv4:" + absl::StrJoin(v4, ",");
}

std::shared_ptr<grpc::Channel> ControllerChannel(const std::string& addresses,
                                                 const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                                 grpc::ChannelArguments args) {
  auto target = ControllerTarget(addresses);
  if (!target.ok() || *target == addresses) return grpc::CreateCustomChannel(addresses, credentials, args);
  // The name TLS checks and the :authority every call carries: the first one given.
  const std::string first(absl::StripAsciiWhitespace(addresses.substr(0, addresses.find(','))));
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, first);
  return grpc::CreateCustomChannel(*target, credentials, args);
}

}  // namespace dockyard
