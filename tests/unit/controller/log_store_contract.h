// The log store's contract as tests: LogStore over every LogBackend (files here;
// PostgreSQL with its archive in S3 in the scale-out suite) with the same assertions.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "gtest/gtest.h"

#include "controller/log_backend.h"

namespace dockyard::testing {

struct LogStoreBackend {
  std::string name;
  // A new empty place for logs; returns what opens a backend over it (again after
  // a "restart").
  std::function<std::function<std::unique_ptr<LogBackend>()>()> fresh;
  // Waits for what the backend does in the background once attempts settle.
  std::function<void(LogBackend&)> settle = [](LogBackend&) {};
};

// Test names and failure messages show the engine, not the bytes of this struct.
inline void PrintTo(const LogStoreBackend& backend, std::ostream* os) { *os << backend.name; }

class LogStoreContract : public ::testing::TestWithParam<LogStoreBackend> {};

}  // namespace dockyard::testing
