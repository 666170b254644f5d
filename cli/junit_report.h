// A run as a JUnit XML report, for CI servers that show test results (Jenkins'
// JUnit plugin): one testcase per stage — classname the pipeline, the stage's
// time, a failure with the stage's message and the last lines of its log, skipped
// for stages that never ran, and the attempts it took.
#pragma once

#include <map>
#include <string>

#include "dockyard/v1/run.pb.h"

namespace dockyard {

// `log_tails`: stage name -> the last lines of its current attempt's log (for
// failed stages).
std::string JunitXml(const v1::Run& run, const std::map<std::string, std::string>& log_tails);

}  // namespace dockyard
