#include "common/sha256.h"

#include <gtest/gtest.h>

namespace dockyard {
namespace {

TEST(Sha256, MatchesKnownDigestOfEmptyInput) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, StreamingEqualsOneShot) {
  Sha256 h;
  h.Update("hello ");
  h.Update("world");
  EXPECT_EQ(h.HexDigest(), Sha256Hex("hello world"));
}

TEST(Sha256, RecognisesOnlyLowerCaseHexDigests) {
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("x")));
  EXPECT_FALSE(IsSha256Hex("../etc/passwd"));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
}

}  // namespace
}  // namespace dockyard
