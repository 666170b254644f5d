// Test support: a fresh directory for the running test, removed when that test
// ends, so tests never see each other's files and leave nothing behind in /tmp.
#pragma once

#include <string>

namespace dockyard::testing {

// A new empty directory under the test temp dir, named after the running test.
// Call only from inside a test.
std::string FreshDir();

}  // namespace dockyard::testing
