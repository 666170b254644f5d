#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace dockyard {

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  if (auto existing = spdlog::get(component)) return existing;
  try {
    auto logger = spdlog::stderr_color_mt(component);
    logger->set_level(spdlog::get_level());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%n] %v");
    return logger;
  } catch (const spdlog::spdlog_ex&) {
    // Another thread registered it between get() and create; use theirs.
    return spdlog::get(component);
  }
}

void SetLogLevel(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace dockyard
