#include "controller/blob_streams.h"

#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"

namespace dockyard {
namespace {

constexpr int64_t kChunkBytes = 1 << 20;

// Reads one chunk ahead: while a chunk is being written to the client, the pool
// reads the next, so the disk and the network overlap instead of taking turns.
class BlobReader final : public grpc::ServerWriteReactor<v1::BlobChunk> {
 public:
  BlobReader(BlobStore* blobs, WorkerPool* pool, std::string sha256)
      : blobs_(blobs), pool_(pool), sha256_(std::move(sha256)) {
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
  // On the pool: reads the next chunk and hands it over.
  void ReadAhead() {
    std::optional<grpc::Status> end;
    std::string data;
    if (sha256_.empty()) {
      end = grpc::Status(grpc::StatusCode::NOT_FOUND, "no such blob");
    } else if (auto read = blobs_->Read(sha256_, offset_, kChunkBytes); !read.ok()) {
      end = ToGrpcStatus(read.status());
    } else if (read->empty()) {
      end = offset_ == 0 && !blobs_->Contains(sha256_) ? grpc::Status(grpc::StatusCode::NOT_FOUND, "no blob " + sha256_)
                                                       : grpc::Status::OK;
    } else {
      offset_ += static_cast<int64_t>(read->size());
      data = *std::move(read);
    }
    mu_.Lock();
    reading_ = false;
    if (done_) {
      mu_.Unlock();
      delete this;
      return;
    }
    ahead_ = std::move(data);
    ahead_end_ = end;
    have_ahead_ = true;
    SendReady();
    mu_.Unlock();
  }

  // Starts the next write when the previous one is done and a chunk is at hand.
  void SendReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || !have_ahead_ || finished_) return;
    have_ahead_ = false;
    if (ahead_end_) return End(*ahead_end_);
    chunk_.set_data(std::move(ahead_));
    writing_ = true;
    StartWrite(&chunk_);
    reading_ = true;
    pool_->Post([this] { ReadAhead(); });
  }

  void End(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  BlobStore* blobs_;
  WorkerPool* pool_;
  const std::string sha256_;
  int64_t offset_ = 0;  // read by one ReadAhead at a time
  absl::Mutex mu_;
  v1::BlobChunk chunk_;                           // being written
  std::string ahead_ ABSL_GUARDED_BY(mu_);        // the next chunk, once read
  std::optional<grpc::Status> ahead_end_ ABSL_GUARDED_BY(mu_);
  bool have_ahead_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // a ReadAhead is posted or running
  bool done_ ABSL_GUARDED_BY(mu_) = false;     // OnDone came
};

}  // namespace

grpc::ServerWriteReactor<v1::BlobChunk>* NewBlobReader(BlobStore* blobs, WorkerPool* pool,
                                                       std::string sha256) {
  return new BlobReader(blobs, pool, std::move(sha256));
}

}  // namespace dockyard
