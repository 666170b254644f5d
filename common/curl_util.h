// What every libcurl user here shares: the one-time global init, owning handles, and
// RFC 3986 percent-encoding (the form the Docker API, S3's SigV4 and libpq's URIs want).
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>
#include <string_view>

namespace dockyard {

// Runs curl_global_init once per process (it is not thread-safe by itself).
void EnsureCurlGlobalInit();

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlDeleter>;

// Everything but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex).
std::string PercentEncode(std::string_view s);

}  // namespace dockyard
