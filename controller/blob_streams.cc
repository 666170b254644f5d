#include "controller/blob_streams.h"

#include <algorithm>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace dockyard {
namespace {

constexpr int64_t kChunkBytes = 1 << 20;

// Produces one message ahead: while a message is being written to the client, the
// pool produces the next, so the disk and the network overlap instead of taking turns.
template <typename Message>
class ReadAheadWriter final : public grpc::ServerWriteReactor<Message> {
 public:
  ReadAheadWriter(WorkerPool* pool, Producer<Message> produce) : pool_(pool), produce_(std::move(produce)) {
    reading_ = true;
    pool_->Post([this] { ReadAhead(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return End(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    SendReady();
  }

  // A read still under way on the pool deletes the reactor when it returns.
  void OnDone() override {
    mu_.Lock();
    const bool reading = reading_;
    done_ = true;
    mu_.Unlock();
    if (!reading) delete this;
  }

 private:
  // On the pool: produces the next message and hands it over.
  void ReadAhead() {
    std::optional<grpc::Status> end;
    Message next;
    if (absl::StatusOr<bool> more = produce_(next); !more.ok()) {
      end = ToGrpcStatus(more.status());
    } else if (!*more) {
      end = grpc::Status::OK;
    }
    mu_.Lock();
    reading_ = false;
    if (done_) {
      mu_.Unlock();
      delete this;
      return;
    }
    ahead_ = std::move(next);
    ahead_end_ = end;
    have_ahead_ = true;
    SendReady();
    mu_.Unlock();
  }

  // Starts the next write when the previous one is done and a message is at hand.
  void SendReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || !have_ahead_ || finished_) return;
    have_ahead_ = false;
    if (ahead_end_) return End(*ahead_end_);
    message_ = std::move(ahead_);
    writing_ = true;
    this->StartWrite(&message_);
    reading_ = true;
    pool_->Post([this] { ReadAhead(); });
  }

  void End(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    this->Finish(status);
  }

  WorkerPool* pool_;
  Producer<Message> produce_;  // called by one ReadAhead at a time
  absl::Mutex mu_;
  Message message_;                             // being written
  Message ahead_ ABSL_GUARDED_BY(mu_);          // the next, once produced
  std::optional<grpc::Status> ahead_end_ ABSL_GUARDED_BY(mu_);
  bool have_ahead_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // a ReadAhead is posted or running
  bool done_ ABSL_GUARDED_BY(mu_) = false;     // OnDone came
};

}  // namespace

template <typename Message>
grpc::ServerWriteReactor<Message>* NewReadAheadWriter(WorkerPool* pool, Producer<Message> produce) {
  return new ReadAheadWriter<Message>(pool, std::move(produce));
}
template grpc::ServerWriteReactor<v1::BlobChunk>* NewReadAheadWriter(WorkerPool*, Producer<v1::BlobChunk>);
template grpc::ServerWriteReactor<v1::ArtifactPieces>* NewReadAheadWriter(WorkerPool*, Producer<v1::ArtifactPieces>);

grpc::ServerWriteReactor<v1::BlobChunk>* NewBlobReader(BlobStore* blobs, WorkerPool* pool,
                                                       std::string sha256) {
  int64_t offset = 0;
  return NewReadAheadWriter<v1::BlobChunk>(
      pool, [blobs, sha256 = std::move(sha256), offset](v1::BlobChunk& chunk) mutable -> absl::StatusOr<bool> {
        if (sha256.empty()) return absl::NotFoundError("no such blob");
        ASSIGN_OR_RETURN(std::string read, blobs->Read(sha256, offset, kChunkBytes));
        if (read.empty()) {
          if (offset == 0 && !blobs->Contains(sha256)) return absl::NotFoundError("no blob " + sha256);
          return false;
        }
        offset += static_cast<int64_t>(read.size());
        chunk.set_data(std::move(read));
        return true;
      });
}

grpc::ServerWriteReactor<v1::ArtifactPieces>* NewArtifactsReader(BlobStore* blobs, WorkerPool* pool,
                                                                 std::vector<SizedBlob> files) {
  size_t index = 0;
  int64_t offset = 0;
  return NewReadAheadWriter<v1::ArtifactPieces>(
      pool, [blobs, files = std::move(files), index, offset](v1::ArtifactPieces& out) mutable -> absl::StatusOr<bool> {
        int64_t budget = kChunkBytes;
        // Small files share a message, read together (side by side where a read is a
        // round trip); a large one is cut into messages of kChunkBytes.
        std::vector<SizedBlob> whole;
        for (size_t i = index; offset == 0 && i < files.size() && files[i].size <= budget; ++i) {
          whole.push_back(files[i]);
          budget -= files[i].size;
        }
        if (!whole.empty()) {
          ASSIGN_OR_RETURN(std::vector<std::string> read, blobs->ReadWhole(whole));
          for (std::string& data : read) {
            v1::ArtifactPiece* piece = out.add_pieces();
            piece->set_index(static_cast<int32_t>(index++));
            piece->set_data(std::move(data));
          }
          return true;
        }
        if (index == files.size()) return false;
        const SizedBlob& file = files[index];
        ASSIGN_OR_RETURN(std::string read, blobs->Read(file.sha256, offset, std::min(budget, file.size - offset)));
        if (read.empty()) {
          return absl::DataLossError(absl::StrCat("blob ", file.sha256, " ends at ", offset, " of its ",
                                                  file.size, " bytes"));
        }
        offset += static_cast<int64_t>(read.size());
        v1::ArtifactPiece* piece = out.add_pieces();
        piece->set_index(static_cast<int32_t>(index));
        piece->set_data(std::move(read));
        if (offset == file.size) {
          ++index;
          offset = 0;
        }
        return true;
      });
}

}  // namespace dockyard
