// spdlog set-up: one named logger per component, writing to stderr.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace dockyard {

// Returns the logger for `component` ("controller", "agent", "docker", ...),
// creating it on first use. Thread-safe.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

// Sets the level of every logger, present and future ("debug", "info", "warn", ...).
void SetLogLevel(const std::string& level);

}  // namespace dockyard
