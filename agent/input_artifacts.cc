#include "agent/input_artifacts.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/blob_receiver.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/tar_io.h"
#include "common/units.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;
using namespace tar_io;  // NOLINT: a user of the shared tar plumbing

}  // namespace

InputArtifacts::InputArtifacts(v1::AgentService::Stub* stub, std::string dir, int64_t max_bytes)
    : stub_(stub), dir_(std::move(dir)), max_bytes_(max_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
}

absl::Status InputArtifacts::Fetch(const std::string& run_id, const v1::InputArtifact& input) {
  absl::MutexLock lock(&fetch_mu_);
  const std::string path = absl::StrCat(dir_, "/", input.sha256());
  std::error_code ec;
  if (fs::exists(path, ec)) {
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // recently used: trimmed last
    return absl::OkStatus();
  }
  v1::FetchArtifactRequest request;
  request.set_run_id(run_id);
  request.set_sha256(input.sha256());
  RetryPolicy policy;
  policy.per_try_deadline = absl::Minutes(30);
  auto fetched = FetchBlob([&](grpc::ClientContext& c) { return stub_->FetchArtifact(&c, request); }, path,
                           input.sha256(), input.size(), policy);
  if (absl::IsDataLoss(fetched.status())) {
    return absl::DataLossError(absl::StrCat("input ", input.name(), " from stage ", input.stage(),
                                            " does not match its digest ", input.sha256(), ": not used"));
  }
  if (!fetched.ok()) {
    return absl::Status(fetched.status().code(),
                        absl::StrCat("fetching input ", input.name(), ": ", fetched.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> InputArtifacts::Pack(const v1::StageAssignment& assignment, const std::string& out_tar) {
  // Whatever happens, this stage's files may go once it has them, and the directory
  // is brought back under its bound.
  struct Release {
    InputArtifacts* self;
    const v1::StageAssignment& assignment;
    ~Release() {
      absl::MutexLock lock(&self->fetch_mu_);
      for (const v1::InputArtifact& input : assignment.input_artifacts()) {
        auto it = self->in_use_.find(input.sha256());
        if (it != self->in_use_.end()) self->in_use_.erase(it);
      }
      const std::set<std::string> busy(self->in_use_.begin(), self->in_use_.end());
      if (const int64_t removed = TrimDirectory(self->dir_, self->max_bytes_, busy); removed > 0) {
        Logger("agent")->info("inputs: removed {} of least recently used artifacts (--inputs_max_bytes={})",
                              FormatBytes(removed), FormatBytes(self->max_bytes_));
      }
    }
  } release{this, assignment};
  {
    absl::MutexLock lock(&fetch_mu_);
    for (const v1::InputArtifact& input : assignment.input_artifacts()) in_use_.insert(input.sha256());
  }
  const std::string& run_id = assignment.stage().run_id();
  int64_t bytes = 0;
  for (const v1::InputArtifact& input : assignment.input_artifacts()) {
    RETURN_IF_ERROR(Fetch(run_id, input));
    bytes += input.size();
  }
  AtomicFile out(out_tar);
  RETURN_IF_ERROR(out.Open());
  ASSIGN_OR_RETURN(ArchiveWriter w, OpenWriter(out.fd(), out_tar));
  std::set<std::string> dirs;
  auto add_dirs = [&](const std::string& dir) -> absl::Status {
    std::string path;
    for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
      path = path.empty() ? std::string(part) : absl::StrCat(path, "/", part);
      if (!dirs.insert(path).second) continue;
      Entry e(archive_entry_new());
      archive_entry_set_pathname(e.get(), (path + "/").c_str());
      archive_entry_set_filetype(e.get(), AE_IFDIR);
      archive_entry_set_perm(e.get(), 0755);
      if (Failed(archive_write_header(w.get(), e.get()))) return WriteError(w.get(), out_tar);
    }
    return absl::OkStatus();
  };
  for (const v1::InputArtifact& input : assignment.input_artifacts()) {
    RETURN_IF_ERROR(add_dirs(input.dir()));
    std::string dir = input.dir();
    while (!dir.empty() && dir.front() == '/') dir.erase(0, 1);
    Entry e(archive_entry_new());
    archive_entry_set_pathname(e.get(), absl::StrCat(dir, dir.empty() ? "" : "/", input.name()).c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), input.size());
    if (Failed(archive_write_header(w.get(), e.get()))) return WriteError(w.get(), out_tar);
    std::ifstream in(absl::StrCat(dir_, "/", input.sha256()), std::ios::binary);
    char buf[kBufferSize];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      if (archive_write_data(w.get(), buf, static_cast<size_t>(in.gcount())) < 0) return WriteError(w.get(), out_tar);
    }
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out_tar);
  RETURN_IF_ERROR(out.Commit());
  std::set<std::string> producers;
  for (const auto& [stage, dir] : assignment.spec().inputs()) producers.insert(absl::StrCat(stage, " at ", dir));
  return absl::StrCat("inputs: ", assignment.input_artifacts_size(), " artifact(s), ", FormatBytes(bytes),
                      ", each checked against its sha256 (from ", absl::StrJoin(producers, ", "), ")");
}

}  // namespace dockyard
