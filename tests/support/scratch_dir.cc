#include "tests/support/scratch_dir.h"

#include <stdlib.h>

#include <algorithm>
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
  std::string name = info != nullptr ? info->name() : "test";
  std::replace(name.begin(), name.end(), '/', '-');  // parameterised tests: "Case/engine"
  std::string pattern = ::testing::TempDir() + "dy-" + name + "-XXXXXX";
  if (pattern.size() > 90) pattern = ::testing::TempDir() + "dy-XXXXXX";  // unix socket paths stay short
  const char* made = ::mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr) << "cannot create " << pattern;
  std::string dir = made != nullptr ? made : ::testing::TempDir();
  TheSweeper().Add(dir);
  return dir;
}

}  // namespace dockyard::testing
