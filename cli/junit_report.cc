#include "cli/junit_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/text.h"

namespace dockyard {
namespace {

// XML 1.0 text: the five entities escaped, characters XML cannot carry at all
// (most control characters) replaced, so a log tail never breaks the report.
std::string Escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
          out += '?';
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

bool Failed(v1::StageState state) {
  return state == v1::STAGE_FAILED || state == v1::STAGE_TIMED_OUT || state == v1::STAGE_LOST ||
         state == v1::STAGE_CANCELLED;
}

}  // namespace

std::string JunitXml(const v1::Run& run, const std::map<std::string, std::string>& log_tails) {
  int failures = 0;
  int skipped = 0;
  double total = 0;
  std::string cases;
  for (const v1::StageInfo& stage : run.stages()) {
    const bool ran = stage.started_unix_ms() > 0 && stage.finished_unix_ms() >= stage.started_unix_ms();
    const double seconds = ran ? (stage.finished_unix_ms() - stage.started_unix_ms()) / 1000.0 : 0.0;
    total += seconds;
    absl::StrAppend(&cases, "    <testcase classname=\"", Escape(run.pipeline_name()), "\" name=\"",
                    Escape(stage.name()), "\" time=\"", absl::StrFormat("%.3f", seconds), "\">\n");
    if (Failed(stage.state())) {
      ++failures;
      auto tail = log_tails.find(stage.name());
      absl::StrAppend(&cases, "      <failure message=\"", Escape(absl::StrCat(Word(stage.state()),
                                                                                stage.message().empty() ? "" : ": ",
                                                                                stage.message())),
                      "\" type=\"", Escape(Word(stage.state())), "\">",
                      Escape(tail == log_tails.end() ? "" : tail->second), "</failure>\n");
    } else if (stage.state() != v1::STAGE_SUCCEEDED) {
      ++skipped;
      absl::StrAppend(&cases, "      <skipped message=\"",
                      Escape(stage.message().empty() ? Word(stage.state()) : stage.message()), "\"/>\n");
    }
    if (stage.attempt() > 0) {
      absl::StrAppend(&cases, "      <system-out>", Escape(absl::StrCat("attempt ", stage.attempt(), " on agent ",
                                                                         stage.agent(), "; exit code ",
                                                                         stage.exit_code())),
                      "</system-out>\n");
    }
    absl::StrAppend(&cases, "    </testcase>\n");
  }
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&xml, "<testsuites name=\"dockyard\" tests=\"", run.stages_size(), "\" failures=\"", failures,
                  "\" skipped=\"", skipped, "\" time=\"", absl::StrFormat("%.3f", total), "\">\n");
  absl::StrAppend(&xml, "  <testsuite name=\"", Escape(run.pipeline_name()), "\" tests=\"", run.stages_size(),
                  "\" failures=\"", failures, "\" errors=\"0\" skipped=\"", skipped, "\" time=\"",
                  absl::StrFormat("%.3f", total), "\">\n");
  absl::StrAppend(&xml, "    <properties>\n      <property name=\"dockyard.run\" value=\"", Escape(run.id()),
                  "\"/>\n      <property name=\"dockyard.result\" value=\"", Escape(Word(run.state())),
                  "\"/>\n    </properties>\n");
  absl::StrAppend(&xml, cases, "  </testsuite>\n</testsuites>\n");
  return xml;
}

}  // namespace dockyard
