// The blob store's contract as tests: every BlobStore (the data dir here, an S3
// bucket on Swift in the scale-out suite) is instantiated with the same assertions.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "gtest/gtest.h"

#include "controller/blob_store.h"

namespace dockyard::testing {

struct BlobStoreBackend {
  std::string name;
  // A new empty store.
  std::function<std::unique_ptr<BlobStore>()> fresh;
};

// Test names and failure messages show the engine, not the bytes of this struct.
inline void PrintTo(const BlobStoreBackend& backend, std::ostream* os) { *os << backend.name; }

class BlobStoreContract : public ::testing::TestWithParam<BlobStoreBackend> {};

}  // namespace dockyard::testing
