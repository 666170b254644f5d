// UTF-8 at the edges: protobuf `string` fields must hold valid UTF-8, or the peer
// cannot parse the message. Text users control (pipeline files, file names, error
// messages that quote them) is checked or made safe before it goes on the wire.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dockyard {

// The offset of the first byte that is not part of valid UTF-8; npos when all is.
size_t InvalidUtf8At(std::string_view text);
inline bool IsValidUtf8(std::string_view text) { return InvalidUtf8At(text) == std::string_view::npos; }
// `text` with every byte that is not valid UTF-8 written as \xNN.
std::string SanitizeUtf8(std::string_view text);

}  // namespace dockyard
