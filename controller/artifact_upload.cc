#include "controller/artifact_upload.h"

#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "controller/authorization.h"

namespace dockyard {

ArtifactUploadReactor::ArtifactUploadReactor(ControllerCore* core, WorkerPool* pool, Caller agent, std::string peer,
                                             v1::UploadArtifactResponse* response)
    : core_(core), pool_(pool), agent_(std::move(agent)), peer_(std::move(peer)), response_(response) {
  absl::MutexLock lock(&mu_);
  StartRead(&request_);
}

void ArtifactUploadReactor::OnReadDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  if (!ok) {
    input_ended_ = true;  // the agent half-closed (or vanished)
  } else {
    queue_.push_back(std::move(request_));
    // Reading goes on while the pool writes: the network and the disk overlap.
    if (queue_.size() < kMaxQueued) {
      StartRead(&request_);
    } else {
      read_paused_ = true;
    }
  }
  if (!draining_) {
    draining_ = true;
    pool_->Post([this] { Drain(); });
  }
}

void ArtifactUploadReactor::Drain() {
  for (;;) {
    v1::UploadArtifactRequest message;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        if (!input_ended_) {
          draining_ = false;
          if (read_paused_) {
            read_paused_ = false;
            StartRead(&request_);
          }
          return;
        }
        break;  // everything read and consumed
      }
      message = std::move(queue_.front());
      queue_.pop_front();
    }
    if (absl::Status st = Consume(message); !st.ok()) return FinishWith(st);
  }
  Complete();
}

absl::Status ArtifactUploadReactor::Consume(const v1::UploadArtifactRequest& request) {
  if (committed_) return absl::InvalidArgumentError("nothing may follow the commit");
  switch (request.kind_case()) {
    case v1::UploadArtifactRequest::kHeader:
      if (open_) RETURN_IF_ERROR(EndFile(""));
      return Begin(request.header());
    case v1::UploadArtifactRequest::kData:
      if (!open_) return absl::InvalidArgumentError("data came before its header");
      if (!writer_) return absl::InvalidArgumentError(absl::StrCat(open_->path(), ": data after a header that said none follows"));
      return writer_->Append(request.data());
    case v1::UploadArtifactRequest::kEnd:
      if (!open_) return absl::InvalidArgumentError("an end came before its header");
      return EndFile(request.end().sha256());
    case v1::UploadArtifactRequest::kCommit:
      if (open_) RETURN_IF_ERROR(EndFile(""));
      if (request.commit().files() != static_cast<int>(artifacts_.size())) {
        return absl::InvalidArgumentError(absl::StrCat("the commit names ", request.commit().files(),
                                                       " files; the call carried ", artifacts_.size()));
      }
      committed_ = true;
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("an empty upload message");
  }
}

absl::Status ArtifactUploadReactor::Begin(const v1::ArtifactHeader& header) {
  const std::string name = header.path().substr(header.path().rfind('/') + 1);
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("bad artifact path \"", header.path(), "\""));
  }
  // One call carries one attempt's files: the first header is checked, the rest must match it.
  if (!stage_) {
    if (absl::Status st = core_->CheckUploader(agent_.name, header.stage()); !st.ok()) {
      if (absl::IsPermissionDenied(st)) AuditLine("UploadArtifact", agent_.Describe(), peer_, st);
      return st;
    }
    stage_ = header.stage();
  } else if (!google::protobuf::util::MessageDifferencer::Equals(header.stage(), *stage_)) {
    return absl::InvalidArgumentError(absl::StrCat(header.path(), ": one upload carries the files of one stage attempt"));
  }
  open_ = header;
  BlobStore& blobs = core_->blobs();
  // The same content as a file of this call, or one stored before: nothing to send.
  const bool held = !header.sha256().empty() && header.offset() == header.size() &&
                    (received_.contains(header.sha256()) || blobs.Contains(header.sha256()));
  if (held) {
    writer_.reset();
    return absl::OkStatus();
  }
  if (header.sha256().empty()) {
    streamed_ = true;
    if (header.offset() != 0) return absl::InvalidArgumentError(absl::StrCat(header.path(), ": a streamed file starts at 0"));
    ASSIGN_OR_RETURN(writer_, blobs.NewWriter("", header.size()));
  } else {
    ASSIGN_OR_RETURN(writer_, blobs.NewResumableWriter(header.sha256(), header.size(), header.offset()));
  }
  return absl::OkStatus();
}

absl::Status ArtifactUploadReactor::EndFile(const std::string& sha256) {
  const v1::ArtifactHeader header = *std::move(open_);
  open_.reset();
  const std::string digest = sha256.empty() ? header.sha256() : sha256;
  if (digest.empty()) return absl::InvalidArgumentError(absl::StrCat(header.path(), ": no sha256 given"));
  if (writer_) {
    RETURN_IF_ERROR(writer_->Seal(sha256));
    sealed_.push_back(std::move(writer_));
    received_.insert(digest);
  } else if (digest != header.sha256()) {
    return absl::InvalidArgumentError(absl::StrCat(header.path(), ": a held file ended as another digest"));
  }
  v1::Artifact artifact;
  artifact.set_run_id(header.stage().run_id());
  artifact.set_stage(header.stage().stage());
  artifact.set_path(header.path());
  artifact.set_name(header.path().substr(header.path().rfind('/') + 1));
  artifact.set_size(header.size());
  artifact.set_sha256(digest);
  artifact.set_report(header.report());
  artifact.set_service(header.service());
  artifacts_.push_back(std::move(artifact));
  return absl::OkStatus();
}

void ArtifactUploadReactor::Complete() {
  if (open_) {
    if (absl::Status st = EndFile(""); !st.ok()) return FinishWith(st);
  }
  if (artifacts_.empty()) return FinishWith(absl::InvalidArgumentError("upload ended before its header"));
  // A call cancelled half way reads here like one that ended: only a commit (or the
  // one-file form, its digest announced and verified) says the sender meant it whole.
  if (!committed_ && (artifacts_.size() > 1 || streamed_)) {
    return FinishWith(absl::AbortedError("the upload ended without its commit; nothing was published"));
  }
  if (absl::Status st = core_->blobs().PublishAll(std::move(sealed_)); !st.ok()) return FinishWith(st);
  for (const v1::Artifact& artifact : artifacts_) {
    Logger("controller")->info("run={} stage={} attempt={} artifact={} size={} sha256={}", artifact.run_id(),
                               artifact.stage(), stage_->attempt(), artifact.name(), artifact.size(), artifact.sha256());
  }
  response_->set_sha256(artifacts_.back().sha256());
  response_->set_size(artifacts_.back().size());
  response_->set_files(static_cast<int32_t>(artifacts_.size()));
  FinishWith(core_->RecordArtifacts(artifacts_));
}

void ArtifactUploadReactor::FinishWith(const absl::Status& status) {
  writer_.reset();  // an unpublished upload leaves nothing behind (a resumable one its part)
  sealed_.clear();
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;  // reads still completing are dropped
  }
  Finish(ToGrpcStatus(status));  // the last touch: OnDone may delete this at once
}

}  // namespace dockyard
