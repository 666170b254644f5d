#include "controller/s3_client.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/curl_util.h"
#include "common/files.h"
#include "common/retrier.h"
#include "common/sha256.h"

namespace dockyard {
namespace {

constexpr long kConnectTimeoutMs = 10'000;

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  const absl::string_view line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    (*static_cast<std::map<std::string, std::string>*>(user))[name] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * count;
}

// Frees a libxml2 document.
struct XmlDocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};

std::unique_ptr<xmlDoc, XmlDocFree> ParseXml(std::string_view xml) {
  return std::unique_ptr<xmlDoc, XmlDocFree>(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "s3.xml",
                                                           nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                                        XML_PARSE_NOWARNING));
}

std::string TextOf(xmlNode* node) {
  xmlChar* text = xmlNodeGetContent(node);
  std::string out = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  xmlFree(text);
  return out;
}

// Depth-first: calls `visit` for every element named `name`.
template <typename Visit>
void ForEachElement(xmlNode* node, const std::string& name, Visit&& visit) {
  for (; node != nullptr; node = node->next) {
    if (node->type != XML_ELEMENT_NODE) continue;
    if (name == reinterpret_cast<const char*>(node->name)) {
      visit(node);
    } else {
      ForEachElement(node->children, name, visit);
    }
  }
}

}  // namespace

std::string XmlText(std::string_view xml, const std::string& name) {
  auto doc = ParseXml(xml);
  if (doc == nullptr) return "";
  std::string found;
  bool done = false;
  ForEachElement(xmlDocGetRootElement(doc.get()), name, [&](xmlNode* node) {
    if (!done) found = TextOf(node);
    done = true;
  });
  return found;
}

std::vector<std::map<std::string, std::string>> XmlRecords(std::string_view xml, const std::string& record) {
  std::vector<std::map<std::string, std::string>> records;
  auto doc = ParseXml(xml);
  if (doc == nullptr) return records;
  ForEachElement(xmlDocGetRootElement(doc.get()), record, [&](xmlNode* node) {
    auto& fields = records.emplace_back();
    for (xmlNode* child = node->children; child != nullptr; child = child->next) {
      if (child->type == XML_ELEMENT_NODE) fields[reinterpret_cast<const char*>(child->name)] = TextOf(child);
    }
  });
  return records;
}

absl::StatusOr<S3Credentials> LoadS3Credentials(const std::string& file) {
  S3Credentials credentials;
  if (file.empty()) {
    const char* access = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    if (access == nullptr || secret == nullptr || *access == '\0' || *secret == '\0') {
      return absl::InvalidArgumentError(
          "S3 credentials: give --s3_credentials_file or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    credentials.access_key = access;
    credentials.secret_key = secret;
    return credentials;
  }
  auto text = ReadFileToString(file);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--s3_credentials_file: ", text.status().message()));
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    if (name == "aws_access_key_id") credentials.access_key = value;
    if (name == "aws_secret_access_key") credentials.secret_key = value;
  }
  if (credentials.access_key.empty() || credentials.secret_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--s3_credentials_file ", file, ": needs lines aws_access_key_id=… and aws_secret_access_key=…"));
  }
  return credentials;
}

S3Client::S3Client(S3ClientOptions options) : options_(std::move(options)) {
  while (absl::EndsWith(options_.endpoint, "/")) options_.endpoint.pop_back();
}

absl::StatusOr<S3Client::Response> S3Client::Send(const std::string& method, const std::string& bucket,
                                                  const std::string& key,
                                                  const std::vector<std::pair<std::string, std::string>>& query,
                                                  std::string_view body,
                                                  const std::vector<std::string>& headers) const {
  // SigV4 signs the query as given: it must already be in canonical form (sorted by
  // name, RFC 3986 encoded, "name=" for a bare flag).
  std::vector<std::pair<std::string, std::string>> sorted = query;
  std::sort(sorted.begin(), sorted.end());
  std::string query_string;
  for (const auto& [name, value] : sorted) {
    absl::StrAppend(&query_string, query_string.empty() ? "?" : "&", PercentEncode(name), "=", PercentEncode(value));
  }
  std::string path = "/" + PercentEncode(bucket);
  if (!key.empty()) {
    for (absl::string_view segment : absl::StrSplit(key, '/')) {
      absl::StrAppend(&path, "/", PercentEncode({segment.data(), segment.size()}));
    }
  }
  const std::string url = options_.endpoint + path + query_string;
  absl::StatusOr<Response> result;
  RetryPolicy policy;
  policy.patience = options_.patience;
  policy.max_backoff = absl::Seconds(2);
  (void)Retrier(policy).RunPlain([&]() -> absl::Status {
    result = SendOnce(method, path, url, body, headers);
    if (!result.ok()) return result.status();
    if (result->status == 500 || result->status == 503) return absl::UnavailableError("S3 busy");
    return absl::OkStatus();
  });
  return result;
}

absl::StatusOr<S3Client::Response> S3Client::SendOnce(const std::string& method, const std::string& path,
                                                      const std::string& url, std::string_view body,
                                                      const std::vector<std::string>& headers) const {
  EnsureCurlGlobalInit();
  CurlHandle handle(curl_easy_init());
  if (!handle) return absl::InternalError("curl_easy_init failed");
  CURL* c = handle.get();
  const std::string sigv4 = "aws:amz:" + options_.region + ":s3";

  Response response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, options_.credentials.access_key.c_str());
  curl_easy_setopt(c, CURLOPT_PASSWORD, options_.credentials.secret_key.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response.headers);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  // libcurl (7.87+) signs with the payload hash it finds in this header.
  curl_slist* raw = curl_slist_append(nullptr, ("x-amz-content-sha256: " + Sha256Hex(body)).c_str());
  // A value, not a removal: libcurl would sign a removed header it does not send.
  raw = curl_slist_append(raw, "Content-Type: application/octet-stream");
  for (const std::string& header : headers) raw = curl_slist_append(raw, header.c_str());
  CurlList header_list(raw);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());

  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("S3 endpoint ", options_.endpoint, ": ", method, " ", path, ": ",
                                               errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

absl::Status S3Client::ErrorOf(const Response& response, const std::string& what) const {
  const std::string code = XmlText(response.body, "Code");
  std::string message = absl::StrCat(what, ": S3 endpoint ", options_.endpoint, " answered HTTP ", response.status,
                                     code.empty() ? "" : " " + code);
  if (const std::string detail = XmlText(response.body, "Message"); !detail.empty()) {
    absl::StrAppend(&message, " (", detail, ")");
  }
  if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "AccessDenied" ||
      response.status == 401 || response.status == 403) {
    absl::StrAppend(&message, "; check the access key and secret (--s3_credentials_file or AWS_* variables)");
    return absl::PermissionDeniedError(message);
  }
  if (response.status == 404) return absl::NotFoundError(message);
  if (response.status >= 500) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

}  // namespace dockyard
