#include "agent/secret_masker.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"

namespace dockyard {
namespace {

// Shorter patterns would mask ordinary text (secret values themselves are at least
// 6 bytes; see SecretStore).
constexpr size_t kMinPatternBytes = 6;

// The base64 characters that depend only on `value` when it starts `offset` bytes
// into a base64-encoded text (offset 0, 1 or 2): the same in any such encoding.
std::string StableBase64(const std::string& value, size_t offset) {
  const std::string encoded = absl::Base64Escape(std::string(offset, '\0') + value);
  const size_t first = (8 * offset + 5) / 6;                 // first char made of value bits only
  const size_t end = (8 * (offset + value.size())) / 6;      // past the last such char
  return end > first ? encoded.substr(first, end - first) : std::string();
}

}  // namespace

SecretMasker::SecretMasker(const std::vector<std::string>& values) {
  auto add = [&](std::string pattern) {
    if (pattern.size() >= kMinPatternBytes) patterns_.push_back(std::move(pattern));
  };
  for (const std::string& value : values) {
    add(value);
    if (value.find('\n') != std::string::npos) {
      // Printed line by line (with a prefix, or through `sed`), each line is masked.
      for (absl::string_view line : absl::StrSplit(value, '\n')) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        add(std::string(line));
      }
    }
    for (size_t offset = 0; offset < 3; ++offset) add(StableBase64(value, offset));
  }
  std::sort(patterns_.begin(), patterns_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  patterns_.erase(std::unique(patterns_.begin(), patterns_.end()), patterns_.end());
  for (const std::string& p : patterns_) first_byte_[static_cast<unsigned char>(p[0])] = true;
}

SecretMasker::Output SecretMasker::Scan(std::string_view buf, std::string* held) const {
  Output out;
  size_t literal = 0;  // start of the bytes not yet copied to out.text
  size_t i = 0;
  while (i < buf.size()) {
    if (!first_byte_[static_cast<unsigned char>(buf[i])]) {
      ++i;
      continue;
    }
    const std::string_view rest = buf.substr(i);
    size_t matched = 0;
    bool maybe = false;  // rest is the start of a pattern and the input ends first
    for (const std::string& p : patterns_) {  // longest first
      if (rest.size() >= p.size()) {
        if (rest.compare(0, p.size(), p) == 0) {
          matched = p.size();
          break;
        }
      } else if (held != nullptr && p.compare(0, rest.size(), rest) == 0) {
        maybe = true;  // a longer pattern may still match: wait for it
        break;
      }
    }
    if (matched > 0) {
      out.text.append(buf.substr(literal, i - literal));
      out.masks.emplace_back(out.text.size(), matched);
      out.text.append(kMask);
      i += matched;
      literal = i;
      continue;
    }
    if (maybe) {
      out.text.append(buf.substr(literal, i - literal));
      held->assign(rest);
      return out;
    }
    ++i;
  }
  out.text.append(buf.substr(literal));
  return out;
}

SecretMasker::Output SecretMasker::Feed(std::string_view data) {
  if (patterns_.empty()) return Output{std::string(data), {}};
  if (held_.empty()) return Scan(data, &held_);
  std::string buf = std::move(held_);
  held_.clear();
  buf.append(data);
  return Scan(buf, &held_);
}

SecretMasker::Output SecretMasker::Flush() {
  Output out;
  if (held_.size() >= kMinPatternBytes) {
    out.masks.emplace_back(0, held_.size());
    out.text = std::string(kMask);
  } else {
    out.text = std::move(held_);
  }
  held_.clear();
  return out;
}

std::string SecretMasker::MaskAll(std::string_view text) const {
  if (patterns_.empty()) return std::string(text);
  return Scan(text, /*held=*/nullptr).text;
}

}  // namespace dockyard
