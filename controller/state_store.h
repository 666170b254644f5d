// The controller's durable state: runs, agents, artifacts and identity as protobuf
// records, so a restart — even after SIGKILL — resumes where the controller was.
// Two engines behind one contract: SQLite in the data dir (the embedded default) and
// PostgreSQL (for controllers that share state). Implementations are thread-safe;
// every call does blocking I/O, so none is made from a gRPC reaction.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/blob_store.h"
#include "controller/log_backend.h"
#include "dockyard/v1/run.pb.h"
#include "dockyard/v1/state.pb.h"

namespace dockyard {

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Inserts or replaces the records, all in one transaction (all or nothing). A stage
  // record counts only while it is newer than its run's record (see StageRecord).
  virtual absl::Status Save(const std::vector<v1::RunRecord>& runs, const std::vector<v1::AgentRecord>& agents,
                            const std::vector<v1::Artifact>& artifacts = {},
                            const std::vector<v1::StageRecord>& stages = {}) = 0;
  // Deletes the runs and their stage and artifact records, in one transaction (retention).
  virtual absl::Status DeleteRuns(const std::vector<std::string>& run_ids) = 0;
  // Inserts or replaces the artifact named (run_id, stage, name).
  absl::Status SaveArtifact(const v1::Artifact& artifact) { return Save({}, {}, {artifact}); }
  // Identity: inserts or replaces by token id / enrolment token id / agent name.
  absl::Status SaveToken(const v1::TokenRecord& token);
  absl::Status SaveEnrolToken(const v1::EnrolTokenRecord& token);
  absl::Status SaveEnrolledAgent(const v1::EnrolledAgentRecord& agent);
  // Secrets (encrypted by SecretStore before they get here): by name.
  absl::Status SaveSecret(const v1::SecretRecord& secret);
  absl::Status DeleteSecret(const std::string& name);

  struct Contents {
    std::vector<v1::RunRecord> runs;        // by id (numeric ids in numeric order)
    std::vector<v1::AgentRecord> agents;    // by name
    std::vector<v1::Artifact> artifacts;    // by run, then in the order first saved
    std::vector<v1::TokenRecord> tokens;    // in the order first saved
    std::vector<v1::EnrolTokenRecord> enrol_tokens;
    std::vector<v1::EnrolledAgentRecord> enrolled_agents;
    std::vector<v1::SecretRecord> secrets;
  };
  // Everything saved, as of one moment. DATA_LOSS when a record does not parse.
  virtual absl::StatusOr<Contents> Load() = 0;

  // Several controllers may share a database: this one waits until it holds the
  // leader lease (`term` long, renewed inside it, `address` telling others where it
  // serves), then fences every write with it; `on_lost` runs (from another thread)
  // if the lease is ever lost, and the store refuses writes from then on. Embedded
  // engines (SQLite) lead at once. Blocks; call before Load.
  struct Leadership {
    std::string holder;   // unique to this process
    std::string address;  // host:port clients dial
    absl::Duration term = absl::Seconds(10);
    std::function<void(const absl::Status&)> on_lost;
    // Waits up to the given time between tries; true: stop waiting (the process is
    // asked to end), and Lead returns CANCELLED. Default: sleeps.
    std::function<bool(absl::Duration)> pause;
  };
  virtual absl::Status Lead(const Leadership& leadership) {
    (void)leadership;
    return absl::OkStatus();
  }

  // Where the state lives, for messages: a path or a URL without its password.
  virtual std::string Describe() const = 0;

  // Where stage logs go with this state: files under `dir` beside an SQLite
  // database; the shared database itself (each settled attempt archived as one blob
  // in `archive`, which must outlive the backend) for PostgreSQL.
  virtual std::unique_ptr<LogBackend> NewLogBackend(const std::string& dir, BlobStore* archive) = 0;

 protected:
  // Identity records are one table keyed by (kind, key): kinds below.
  virtual absl::Status PutIdentity(const std::string& kind, const std::string& key, const std::string& record) = 0;
  virtual absl::Status DeleteIdentity(const std::string& kind, const std::string& key) = 0;
  // Adds a loaded identity row to `contents`; a kind this version does not know (a
  // newer controller wrote it) is skipped. DATA_LOSS when it does not parse.
  absl::Status AddIdentity(const std::string& kind, const std::string& key, const std::string& record,
                           Contents& contents) const;
  // Folds stage records into the runs they belong to where they are newer; one for
  // no loaded run or stage is dropped (its run was deleted).
  static void ApplyStageRecords(const std::vector<v1::StageRecord>& stages, std::vector<v1::RunRecord>& runs);
  // The key of an artifact within its run: stage and name (two stages may publish
  // the same file name; a service's log sits beside the stage's artifacts).
  static std::string ArtifactKey(const v1::Artifact& artifact);
};

// Which engine holds the state, from --state.
struct StateStoreOptions {
  // "sqlite" (<data_dir>/state.db) or "postgresql://user@host:port/database[?options]".
  // A password never appears here: it comes from `password_file` or libpq's PGPASSFILE.
  std::string spec = "sqlite";
  std::string data_dir;
  std::string password_file;
};

// Opens (creating or migrating the schema) the store `options` name. Errors name the
// store; INVALID_ARGUMENT for a spec that names no engine or carries a password.
absl::StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const StateStoreOptions& options);

}  // namespace dockyard
