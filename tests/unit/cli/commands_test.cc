#include "cli/commands.h"

#include <gtest/gtest.h>

namespace dockyard {
namespace {

TEST(Commands, OnlyPlainFileNamesMayBeWrittenUnderTarget) {
  for (const char* ok : {"app-1.0+local-py3-none-any.whl", "report (1).txt", ".hidden", "caf\xc3\xa9.txt"}) {
    EXPECT_TRUE(PlainFileName(ok)) << ok;
  }
  for (const char* bad : {"", ".", "..", "../evil", "a/b", "/etc/passwd", "bad\xff.txt"}) {
    EXPECT_FALSE(PlainFileName(bad)) << bad;
  }
  EXPECT_FALSE(PlainFileName(std::string("nul\0byte", 8)));
}

TEST(Commands, ExitCodesTellHowARunEnded) {
  EXPECT_EQ(ExitCodeFor(v1::RUN_SUCCEEDED), kExitOk);
  EXPECT_EQ(ExitCodeFor(v1::RUN_FAILED), kExitRunFailed);
  EXPECT_EQ(ExitCodeFor(v1::RUN_CANCELLED), kExitCancelled);
}

}  // namespace
}  // namespace dockyard
