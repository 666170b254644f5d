#include "controller/postgres_log_backend.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "controller/leader_lease.h"

namespace dockyard {
namespace {

// Pieces read per query while archiving: bounded memory whatever the log's size.
constexpr int kArchivePage = 64;

std::string Bytes(const pqxx::field& field) { return pqxx::binarystring(field).str(); }

}  // namespace

PostgresLogBackend::PostgresLogBackend(const std::string& connect_string, const std::string& describe,
                                       BlobStore* archive)
    : archive_(archive),
      writer_(connect_string, describe),
      reader_(connect_string, describe),
      archiver_(connect_string, describe),
      thread_([this] { ArchiveLoop(); }) {}

PostgresLogBackend::~PostgresLogBackend() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::StatusOr<LogBackend::Recovered> PostgresLogBackend::Recover(const v1::StageRef& ref) {
  Recovered recovered;
  RETURN_IF_ERROR(writer_.Run("cannot read the log's state", [&](pqxx::connection& connection) {
    pqxx::read_transaction tx(connection);
    const pqxx::result archived = tx.exec_params(
        "SELECT size, next_seq FROM log_archives WHERE run_id = $1 AND stage = $2 AND attempt = $3", ref.run_id(),
        ref.stage(), ref.attempt());
    if (!archived.empty()) {
      recovered.size = archived[0][0].as<int64_t>();
      recovered.next_seq = archived[0][1].as<int64_t>();
      return absl::OkStatus();
    }
    const pqxx::row live = tx.exec_params1(
        "SELECT COALESCE(MAX(start_offset + length(data)), 0), COALESCE(MAX(seq), -1) + 1 FROM log_pieces "
        "WHERE run_id = $1 AND stage = $2 AND attempt = $3",
        ref.run_id(), ref.stage(), ref.attempt());
    recovered.size = live[0].as<int64_t>();
    recovered.next_seq = live[1].as<int64_t>();
    return absl::OkStatus();
  }));
  return recovered;
}

absl::Status PostgresLogBackend::Write(const v1::StageRef& ref, int64_t seq, int64_t offset, std::string_view data) {
  return writer_.Run("cannot store a log piece", [&](pqxx::connection& connection) -> absl::Status {
    pqxx::work tx(connection);
    if (fence_epoch_ != nullptr) RETURN_IF_ERROR(LeaderLease::Fence(tx, fence_holder_, fence_epoch_->load(), writer_.describe()));
    tx.exec_params("INSERT INTO log_pieces (run_id, stage, attempt, start_offset, seq, data) "
                   "VALUES ($1, $2, $3, $4, $5, $6)",
                   ref.run_id(), ref.stage(), ref.attempt(), offset, seq,
                   pqxx::binarystring(data.data(), data.size()));
    tx.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> PostgresLogBackend::Read(const v1::StageRef& ref, int64_t offset, int64_t max_bytes,
                                                     int64_t size) {
  const int64_t want = std::min(max_bytes, size - offset);
  std::string data;
  if (want <= 0) return data;
  std::string archived_as;
  RETURN_IF_ERROR(reader_.Run("cannot read a log", [&](pqxx::connection& connection) {
    // One snapshot: either the archive is recorded, or the pieces are all there.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(connection);
    const pqxx::result archived = tx.exec_params(
        "SELECT sha256 FROM log_archives WHERE run_id = $1 AND stage = $2 AND attempt = $3", ref.run_id(),
        ref.stage(), ref.attempt());
    if (!archived.empty()) {
      archived_as = archived[0][0].as<std::string>();
      return absl::OkStatus();
    }
    // From the piece holding `offset` (the key's order finds it at once) onwards.
    const pqxx::result pieces = tx.exec_params(
        "SELECT start_offset, data FROM log_pieces WHERE run_id = $1 AND stage = $2 AND attempt = $3 "
        "AND start_offset >= (SELECT COALESCE(MAX(start_offset), 0) FROM log_pieces "
        "  WHERE run_id = $1 AND stage = $2 AND attempt = $3 AND start_offset <= $4) "
        "AND start_offset < $5 ORDER BY start_offset",
        ref.run_id(), ref.stage(), ref.attempt(), offset, offset + want);
    for (const pqxx::row& row : pieces) {
      const int64_t start = row[0].as<int64_t>();
      const std::string piece = Bytes(row[1]);
      if (start + static_cast<int64_t>(piece.size()) <= offset) continue;
      const size_t skip = static_cast<size_t>(std::max<int64_t>(0, offset - start));
      data.append(piece, skip, std::string::npos);
    }
    return absl::OkStatus();
  }));
  if (!archived_as.empty()) return archive_->Read(archived_as, offset, want);
  if (static_cast<int64_t>(data.size()) > want) data.resize(static_cast<size_t>(want));
  return data;
}

absl::Status PostgresLogBackend::RemoveRun(const std::string& run_id) {
  return writer_.Run("cannot remove logs", [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    tx.exec_params("DELETE FROM log_pieces WHERE run_id = $1", run_id);
    tx.exec_params("DELETE FROM log_archives WHERE run_id = $1", run_id);
    tx.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::set<std::string>> PostgresLogBackend::ArchiveDigests(const std::set<std::string>& except_runs) {
  std::set<std::string> digests;
  {
    // First: a blob published before this call is then either still here or, by the
    // time the rows are read below, in its row.
    absl::MutexLock lock(&mu_);
    if (!publishing_.empty()) digests.insert(publishing_);
  }
  RETURN_IF_ERROR(reader_.Run("cannot list log archives", [&](pqxx::connection& connection) {
    pqxx::read_transaction tx(connection);
    for (const pqxx::row& row : tx.exec("SELECT run_id, sha256 FROM log_archives")) {
      if (except_runs.count(row[0].as<std::string>()) == 0) digests.insert(row[1].as<std::string>());
    }
    return absl::OkStatus();
  }));
  return digests;
}

void PostgresLogBackend::Settled(const v1::StageRef& ref, int64_t size) {
  absl::MutexLock lock(&mu_);
  queue_.emplace_back(ref, size);
}

void PostgresLogBackend::WaitForArchives() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](PostgresLogBackend* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
        return self->queue_.empty() && !self->archiving_;
      },
      this));
}

void PostgresLogBackend::ArchiveLoop() {
  for (;;) {
    std::pair<v1::StageRef, int64_t> next;
    {
      absl::MutexLock lock(&mu_);
      archiving_ = false;
      mu_.Await(absl::Condition(
          +[](PostgresLogBackend* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (stopping_) return;
      next = std::move(queue_.front());
      queue_.pop_front();
      archiving_ = true;
    }
    if (absl::Status st = Archive(next.first, next.second); !st.ok()) {
      // The pieces stay and serve readers; the next start tries again.
      Logger("controller")->warn("run={} stage={} attempt={} log not archived: {}", next.first.run_id(),
                                 next.first.stage(), next.first.attempt(), st.ToString());
    }
  }
}

absl::Status PostgresLogBackend::Archive(const v1::StageRef& ref, int64_t size) {
  if (size == 0) return absl::OkStatus();  // nothing to keep: readers see an empty log either way
  bool done = false;
  RETURN_IF_ERROR(archiver_.Run("cannot check the log's archive", [&](pqxx::connection& connection) {
    pqxx::read_transaction tx(connection);
    done = !tx.exec_params("SELECT 1 FROM log_archives WHERE run_id = $1 AND stage = $2 AND attempt = $3",
                           ref.run_id(), ref.stage(), ref.attempt())
                .empty();
    return absl::OkStatus();
  }));
  if (done) return absl::OkStatus();

  // Pieces into one blob, a page at a time, checked to join up to exactly `size`.
  ASSIGN_OR_RETURN(std::unique_ptr<BlobStore::Writer> blob, archive_->NewWriter("", size));
  Sha256 hash;
  int64_t written = 0;
  int64_t next_seq = 0;
  for (;;) {
    int rows = 0;
    RETURN_IF_ERROR(archiver_.Run("cannot read log pieces", [&](pqxx::connection& connection) -> absl::Status {
      pqxx::read_transaction tx(connection);
      for (const pqxx::row& row : tx.exec_params(
               "SELECT start_offset, seq, data FROM log_pieces WHERE run_id = $1 AND stage = $2 AND attempt = $3 "
               "AND start_offset >= $4 ORDER BY start_offset LIMIT $5",
               ref.run_id(), ref.stage(), ref.attempt(), written, kArchivePage)) {
        ++rows;
        if (row[0].as<int64_t>() != written) {
          return absl::DataLossError(absl::StrCat("log pieces do not join up at offset ", written));
        }
        const std::string piece = Bytes(row[2]);
        if (const int64_t seq = row[1].as<int64_t>(); seq >= 0) next_seq = seq + 1;
        hash.Update(piece);
        RETURN_IF_ERROR(blob->Append(piece));
        written += static_cast<int64_t>(piece.size());
      }
      return absl::OkStatus();
    }));
    if (rows < kArchivePage || written >= size) break;
  }
  if (written != size) {
    return absl::DataLossError(absl::StrCat("the log holds ", written, " bytes in pieces, not ", size));
  }
  const std::string sha256 = hash.HexDigest();
  RETURN_IF_ERROR(blob->Seal(sha256));
  std::vector<std::unique_ptr<BlobStore::Writer>> sealed;
  sealed.push_back(std::move(blob));
  {
    absl::MutexLock lock(&mu_);
    publishing_ = sha256;
  }
  absl::Cleanup published = [this] {
    absl::MutexLock lock(&mu_);
    publishing_.clear();
  };
  RETURN_IF_ERROR(archive_->PublishAll(std::move(sealed)));
  // The switch: recorded and the pieces gone in one commit.
  return archiver_.Run("cannot record the log's archive", [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    tx.exec_params("INSERT INTO log_archives (run_id, stage, attempt, sha256, size, next_seq) "
                   "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                   ref.run_id(), ref.stage(), ref.attempt(), sha256, size, next_seq);
    tx.exec_params("DELETE FROM log_pieces WHERE run_id = $1 AND stage = $2 AND attempt = $3", ref.run_id(),
                   ref.stage(), ref.attempt());
    tx.commit();
    return absl::OkStatus();
  });
}

}  // namespace dockyard
