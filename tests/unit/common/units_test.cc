#include "common/units.h"

#include <gtest/gtest.h>

namespace dockyard {
namespace {

TEST(Units, SizesAreBinaryWithOrWithoutTheB) {
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576);
  EXPECT_EQ(*ParseByteSize("512M"), 512LL << 20);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512LL << 20);
  EXPECT_EQ(*ParseByteSize("4g"), 4LL << 30);
  EXPECT_EQ(*ParseByteSize("1.5G"), 3LL << 29);
  EXPECT_EQ(*ParseByteSize("64k"), 64 << 10);
}

TEST(Units, NonsenseSizesAreInvalidArgumentNamingTheText) {
  for (const char* bad : {"", "M", "-1G", "0", "12X", "1e30T", "lots"}) {
    auto size = ParseByteSize(bad);
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(std::string(ParseByteSize("12X").status().message()).find("\"12X\""), std::string::npos);
}

TEST(Units, CpusAreCountedInThousandths) {
  EXPECT_EQ(*ParseMilliCpus("1"), 1000);
  EXPECT_EQ(*ParseMilliCpus("0.5"), 500);
  EXPECT_EQ(*ParseMilliCpus("2.25"), 2250);
  EXPECT_FALSE(ParseMilliCpus("0").ok());
  EXPECT_FALSE(ParseMilliCpus("two").ok());
}

}  // namespace
}  // namespace dockyard
