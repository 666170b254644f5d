#include "common/utf8.h"

#include <gtest/gtest.h>

namespace dockyard {
namespace {

TEST(Utf8, ValidTextPasses) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2"));  // é € 🚢
}

TEST(Utf8, FindsTheFirstBadByte) {
  EXPECT_EQ(InvalidUtf8At("caf\xe9"), 3u);           // Latin-1 é
  EXPECT_EQ(InvalidUtf8At("ok\xc3"), 2u);            // cut short
  EXPECT_EQ(InvalidUtf8At("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(InvalidUtf8At("\xed\xa0\x80"), 0u);      // a surrogate
  EXPECT_EQ(InvalidUtf8At("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF
}

TEST(Utf8, SanitizedTextIsValidAndShowsTheBytes) {
  const std::string out = SanitizeUtf8("bad\xff.txt caf\xc3\xa9");
  EXPECT_EQ(out, "bad\\xff.txt caf\xc3\xa9");
  EXPECT_TRUE(IsValidUtf8(out));
}

}  // namespace
}  // namespace dockyard
