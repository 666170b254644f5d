// The values behind `secrets:` in pipelines. An admin sets them; they are saved in
// the state store only encrypted (AES-256-GCM under <data_dir>/secrets.key, 0600;
// the name is authenticated with the value, so records cannot be swapped), held in
// memory to hand to the agent that runs a stage needing them, and never read back
// by anyone. Nothing here logs a value or puts one in an error. Thread-safe; Set
// and Delete write to disk, Values only reads memory.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/state_store.h"
#include "dockyard/v1/agent.pb.h"
#include "dockyard/v1/run.pb.h"
#include "dockyard/v1/state.pb.h"

namespace dockyard {

// Shorter values are refused: masking them in logs would hide ordinary words.
inline constexpr size_t kMinSecretBytes = 6;
// The kernel takes at most 128 KiB in one environment string ("NAME=value"), so
// this is no setting.
inline constexpr size_t kMaxSecretBytes = 64 << 10;

class SecretStore {
 public:
  // Reads (or, with no secret saved yet, creates) the key at `key_path` and decrypts
  // `records`. FAILED_PRECONDITION when secrets exist but the key is missing or does
  // not open them, naming the file. `state` must outlive the store.
  static absl::StatusOr<std::unique_ptr<SecretStore>> Open(const std::string& key_path, StateStore* state,
                                                           const std::vector<v1::SecretRecord>& records);

  // INVALID_ARGUMENT for a bad name or a value too short, too long or holding NUL.
  // Returns whether an earlier value was replaced.
  absl::StatusOr<bool> Set(const std::string& name, const std::string& value, const std::string& by);
  // NOT_FOUND for a name without a value.
  absl::Status Delete(const std::string& name);
  std::vector<v1::SecretInfo> List() const;
  // The values of `names`, in that order. FAILED_PRECONDITION naming the first
  // one that is not set.
  absl::StatusOr<std::vector<v1::SecretValue>> Values(const std::vector<std::string>& names) const;

 private:
  SecretStore(std::string key, StateStore* state) : key_(std::move(key)), state_(state) {}

  const std::string key_;  // 32 bytes
  StateStore* const state_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::pair<v1::SecretInfo, std::string>> secrets_ ABSL_GUARDED_BY(mu_);  // name -> info, value
};

}  // namespace dockyard
