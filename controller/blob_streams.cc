#include "controller/blob_streams.h"

#include "common/grpc_status.h"

namespace dockyard {
namespace {

constexpr int64_t kChunkBytes = 1 << 20;

class BlobReader final : public grpc::ServerWriteReactor<v1::BlobChunk> {
 public:
  BlobReader(BlobStore* blobs, WorkerPool* pool, std::string sha256)
      : blobs_(blobs), pool_(pool), sha256_(std::move(sha256)) {
    pool_->Post([this] { Next(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    pool_->Post([this] { Next(); });
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    if (sha256_.empty()) return Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such blob"));
    auto data = blobs_->Read(sha256_, offset_, kChunkBytes);
    if (!data.ok()) return Finish(ToGrpcStatus(data.status()));
    if (data->empty()) {
      if (offset_ == 0 && !blobs_->Contains(sha256_)) {
        return Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no blob " + sha256_));
      }
      return Finish(grpc::Status::OK);
    }
    offset_ += static_cast<int64_t>(data->size());
    chunk_.set_data(*std::move(data));
    StartWrite(&chunk_);
  }

  BlobStore* blobs_;
  WorkerPool* pool_;
  const std::string sha256_;
  int64_t offset_ = 0;
  v1::BlobChunk chunk_;
};

}  // namespace

grpc::ServerWriteReactor<v1::BlobChunk>* NewBlobReader(BlobStore* blobs, WorkerPool* pool,
                                                       std::string sha256) {
  return new BlobReader(blobs, pool, std::move(sha256));
}

}  // namespace dockyard
