#include "tests/support/scratch_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <vector>

#include <gtest/gtest.h>

namespace dockyard::testing {
namespace {

// Removes the directories a test made once it has ended (pass or fail).
class Sweeper : public ::testing::EmptyTestEventListener {
 public:
  void Add(std::string dir) { dirs_.push_back(std::move(dir)); }
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::error_code ec;
    for (const std::string& dir : dirs_) std::filesystem::remove_all(dir, ec);
    dirs_.clear();
  }

 private:
  std::vector<std::string> dirs_;
};

Sweeper& TheSweeper() {
  // Owned by gtest's listener list once appended; lives for the whole test binary.
  static Sweeper* sweeper = [] {
    auto* s = new Sweeper();
    ::testing::UnitTest::GetInstance()->listeners().Append(s);
    return s;
  }();
  return *sweeper;
}

}  // namespace

std::string FreshDir() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string pattern = ::testing::TempDir() + "dy-" + (info != nullptr ? info->name() : "test") + "-XXXXXX";
  if (pattern.size() > 90) pattern = ::testing::TempDir() + "dy-XXXXXX";  // unix socket paths stay short
  std::string dir = ::mkdtemp(pattern.data());
  TheSweeper().Add(dir);
  return dir;
}

}  // namespace dockyard::testing
