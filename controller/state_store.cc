#include "controller/state_store.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "controller/postgres_state_store.h"
#include "controller/sqlite_state_store.h"

namespace dockyard {
namespace {

constexpr const char* kTokenKind = "token";
constexpr const char* kEnrolTokenKind = "enrol_token";
constexpr const char* kEnrolledAgentKind = "enrolled_agent";
constexpr const char* kSecretKind = "secret";

}  // namespace

std::string StateStore::ArtifactKey(const v1::Artifact& artifact) {
  return absl::StrCat(artifact.stage(), "/", artifact.service().empty() ? "" : "services/", artifact.name());
}

absl::Status StateStore::SaveToken(const v1::TokenRecord& token) {
  return PutIdentity(kTokenKind, token.info().id(), token.SerializeAsString());
}

absl::Status StateStore::SaveEnrolToken(const v1::EnrolTokenRecord& token) {
  return PutIdentity(kEnrolTokenKind, token.id(), token.SerializeAsString());
}

absl::Status StateStore::SaveEnrolledAgent(const v1::EnrolledAgentRecord& agent) {
  return PutIdentity(kEnrolledAgentKind, agent.name(), agent.SerializeAsString());
}

absl::Status StateStore::SaveSecret(const v1::SecretRecord& secret) {
  return PutIdentity(kSecretKind, secret.info().name(), secret.SerializeAsString());
}

absl::Status StateStore::DeleteSecret(const std::string& name) { return DeleteIdentity(kSecretKind, name); }

absl::Status StateStore::AddIdentity(const std::string& kind, const std::string& key, const std::string& record,
                                     Contents& contents) const {
  bool parsed = true;
  if (kind == kTokenKind) {
    parsed = contents.tokens.emplace_back().ParseFromString(record);
  } else if (kind == kEnrolTokenKind) {
    parsed = contents.enrol_tokens.emplace_back().ParseFromString(record);
  } else if (kind == kEnrolledAgentKind) {
    parsed = contents.enrolled_agents.emplace_back().ParseFromString(record);
  } else if (kind == kSecretKind) {
    parsed = contents.secrets.emplace_back().ParseFromString(record);
  }
  if (!parsed) {
    return absl::DataLossError(absl::StrCat(Describe(), ": the ", kind, " record \"", key, "\" does not parse"));
  }
  return absl::OkStatus();
}

void StateStore::ApplyStageRecords(const std::vector<v1::StageRecord>& stages, std::vector<v1::RunRecord>& runs) {
  absl::flat_hash_map<std::string, v1::RunRecord*> by_id;
  for (v1::RunRecord& run : runs) by_id[run.run().id()] = &run;
  // Compared with the run record's version as it was saved, not as raised below:
  // each stage record is judged on its own.
  absl::flat_hash_map<std::string, int64_t> saved_version;
  for (const v1::RunRecord& run : runs) saved_version[run.run().id()] = run.version();
  for (const v1::StageRecord& stage : stages) {
    auto it = by_id.find(stage.run_id());
    if (it == by_id.end()) continue;
    v1::RunRecord& run = *it->second;
    const int index = stage.index();
    if (stage.run_version() <= saved_version[stage.run_id()] || index < 0 || index >= run.run().stages_size() ||
        index >= run.lost_retries_left_size() || index >= run.fail_retries_left_size()) {
      continue;
    }
    *run.mutable_run()->mutable_stages(index) = stage.info();
    run.set_lost_retries_left(index, stage.lost_retries_left());
    run.set_fail_retries_left(index, stage.fail_retries_left());
    run.set_version(std::max(run.version(), stage.run_version()));
  }
}

absl::StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const StateStoreOptions& options) {
  if (options.spec.empty() || options.spec == "sqlite") {
    auto store = SqliteStateStore::Open(options.data_dir + "/state.db");
    if (!store.ok()) return store.status();
    return std::unique_ptr<StateStore>(*std::move(store));
  }
  if (absl::StartsWith(options.spec, "postgresql://") || absl::StartsWith(options.spec, "postgres://")) {
    std::string password;
    if (!options.password_file.empty()) {
      auto read = ReadFileToString(options.password_file);
      if (!read.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--state_password_file ", options.password_file, ": ", read.status().message()));
      }
      password = std::string(absl::StripTrailingAsciiWhitespace(*read));
    }
    auto store = PostgresStateStore::Open(options.spec, password);
    if (!store.ok()) return store.status();
    return std::unique_ptr<StateStore>(*std::move(store));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--state=", options.spec.substr(0, options.spec.find('@')),
      ": expected \"sqlite\" or a postgresql://user@host:port/database URL"));
}

}  // namespace dockyard
