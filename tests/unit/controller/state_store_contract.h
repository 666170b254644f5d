// The state store's contract as tests: every engine behind StateStore (SQLite here,
// PostgreSQL in the scale-out suite) is instantiated with the same assertions.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "gtest/gtest.h"

#include "controller/state_store.h"

namespace dockyard::testing {

struct StateStoreBackend {
  std::string name;
  // A new empty location for a store (options for OpenStateStore).
  std::function<StateStoreOptions()> fresh;
  // Runs `sql` on the location directly, as an operator's shell would.
  std::function<void(const StateStoreOptions&, const std::string& sql)> raw_sql;
  // The engine's SQL for a binary literal of `hex` digits, and the table holding
  // the schema version.
  std::function<std::string(const std::string& hex)> bytes_literal;
  std::string schema_table;
};

// Test names and failure messages show the engine, not the bytes of this struct.
inline void PrintTo(const StateStoreBackend& backend, std::ostream* os) { *os << backend.name; }

class StateStoreContract : public ::testing::TestWithParam<StateStoreBackend> {};

}  // namespace dockyard::testing
