// Replaces a stage's secret values with "***" in its output before anything stores
// or sends it. Besides each value it masks each line of a multi-line value and the
// value's base64 forms at the three alignments it can take inside longer base64
// text. It works on a stream: a tail that could still grow into a secret is held
// back until the next bytes (or the end) decide, so a value split across writes or
// reads is masked too. Not thread-safe (the LogPump's mutex guards it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dockyard {

inline constexpr std::string_view kMask = "***";

class SecretMasker {
 public:
  SecretMasker() = default;
  explicit SecretMasker(const std::vector<std::string>& values);

  bool empty() const { return patterns_.empty(); }

  struct Output {
    std::string text;
    // Where each "***" starts in `text` and how many input bytes it replaced.
    std::vector<std::pair<size_t, size_t>> masks;
  };
  // Masks what was held back plus `data`; returns what may go out now.
  Output Feed(std::string_view data);
  // The stream ended (or breaks): returns what was held back. A held tail as long as
  // the shortest secret is masked whole: it is most likely a secret cut short.
  Output Flush();
  // Masks a complete text (a status message, a line Dockyard writes).
  std::string MaskAll(std::string_view text) const;

 private:
  // Masks `data`. With `held`, a tail that may still grow into a secret goes there
  // instead of into the output; without, the text is complete.
  Output Scan(std::string_view data, std::string* held) const;

  std::vector<std::string> patterns_;  // longest first
  bool first_byte_[256] = {};
  std::string held_;
};

}  // namespace dockyard
