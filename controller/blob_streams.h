// Reactors that stream stored blobs out (sources to agents, artifacts to clients)
// and receive an announced blob in (sources from clients, artifacts from agents).
// Disk and hashing run on a WorkerPool; the reactors only move buffers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/grpc_status.h"
#include "common/worker_pool.h"
#include "controller/blob_store.h"
#include "dockyard/v1/blob.pb.h"
#include "dockyard/v1/run.pb.h"

namespace dockyard {

// A streaming call refused before it started (authorisation): finishes at once
// with `status`. Deletes itself when done.
template <typename Reactor>
class Refusal final : public Reactor {
 public:
  explicit Refusal(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// Fills the next message of a download on a pool thread: true when it did, false at
// the end, an error to finish the call with.
template <typename Message>
using Producer = std::function<absl::StatusOr<bool>(Message& next)>;

// Streams what `produce` makes, one message ahead of the client. Deletes itself when
// done. Instantiated for BlobChunk and ArtifactPieces.
template <typename Message>
grpc::ServerWriteReactor<Message>* NewReadAheadWriter(WorkerPool* pool, Producer<Message> produce);

// Serves the blob `sha256` as 1 MiB chunks. Deletes itself when done.
grpc::ServerWriteReactor<v1::BlobChunk>* NewBlobReader(BlobStore* blobs, WorkerPool* pool,
                                                       std::string sha256);

// Serves `files` one after another as ArtifactPieces of up to 1 MiB (small files
// share a message). DATA_LOSS when a blob is shorter than its size. Deletes itself
// when done.
grpc::ServerWriteReactor<v1::ArtifactPieces>* NewArtifactsReader(BlobStore* blobs, WorkerPool* pool,
                                                                 std::vector<SizedBlob> files);

// Receives one blob: `Header` messages come first, then `data`. The request type
// carries a `header` (converted by `start`) and `data` (bytes). `start` validates
// the header and returns the writer; `done` runs after a verified commit and gives
// the RPC its final status. Deletes itself when done.
template <typename Request>
class BlobUploadReactor : public grpc::ServerReadReactor<Request> {
 public:
  using Start = std::function<absl::StatusOr<std::unique_ptr<BlobStore::Writer>>(const Request& first)>;
  using Done = std::function<absl::Status()>;

  BlobUploadReactor(WorkerPool* pool, Start start, Done done)
      : pool_(pool), start_(std::move(start)), done_(std::move(done)) {
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed (or vanished): commit what came if it was complete.
      pool_->Post([this] { Complete(); });
      return;
    }
    pool_->Post([this] {
      absl::Status st = Consume();
      if (!st.ok()) return FinishWith(st);
      this->StartRead(&request_);
    });
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Consume() {
    if (!writer_) {
      auto writer = start_(request_);
      if (!writer.ok()) return writer.status();
      writer_ = *std::move(writer);
      return absl::OkStatus();
    }
    if (request_.kind_case() != Request::kData) {
      return absl::InvalidArgumentError("only data may follow the header");
    }
    return writer_->Append(request_.data());
  }

  void Complete() {
    if (!writer_) return FinishWith(absl::InvalidArgumentError("upload ended before its header"));
    if (absl::Status st = writer_->Commit(); !st.ok()) return FinishWith(st);
    FinishWith(done_());
  }

  void FinishWith(const absl::Status& status) {
    writer_.reset();  // an uncommitted upload leaves nothing behind
    this->Finish(ToGrpcStatus(status));
  }

  WorkerPool* pool_;
  Start start_;
  Done done_;
  Request request_;
  std::unique_ptr<BlobStore::Writer> writer_;
};

}  // namespace dockyard
