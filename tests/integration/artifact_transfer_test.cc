// Artifact transfers against an in-process controller on 127.0.0.1:0 (TLS), with the
// test playing an enrolled agent over the real gRPC contract: a cut-off or corrupt
// upload is never listed and leaves no temp file; a cut-off one resumes from what
// the controller holds; identical content is stored once; streamed files (digest at
// their end) are published together at the call's commit, and never without it.
// Downloads: many files in one call (the CLI's client), each whole and verified.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "common/sha256.h"
#include "controller/server.h"
#include "tests/support/scripted_agent.h"
#include "tests/support/test_credentials.h"
#include "dockyard/v1/agent.grpc.pb.h"
#include "dockyard/v1/run.grpc.pb.h"

namespace dockyard {
namespace {

namespace fs = std::filesystem;

class ArtifactUpload : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = fs::path(::testing::TempDir()) / ("artifact-upload-" + std::to_string(::getpid()));
    fs::remove_all(data_dir_);
    ServerOptions options;
    options.controller.data_dir = data_dir_.string();
    auto server = ControllerServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    agents_ = v1::AgentService::NewStub(testing::SecureChannel(
        server_->address(), testing::EnrolAgent(server_->address(), data_dir_.string(), "scripted-agent")));
    runs_ = v1::RunService::NewStub(
        testing::SecureChannel(server_->address(), testing::AdminCredentials(data_dir_.string())));

    // Register as an agent with two slots and take both stages of a run.
    agent_ = std::make_unique<testing::ScriptedAgent>(*agents_, "scripted-agent", std::vector<v1::StageRef>{}, 2);

    v1::SubmitRunRequest submit;
    submit.mutable_pipeline()->set_name("artifacts");
    for (const char* name : {"a", "b"}) {
      v1::Stage* stage = submit.mutable_pipeline()->add_stages();
      stage->set_name(name);
      stage->set_image("dockyard/busybox");
      stage->set_run("true");
    }
    grpc::ClientContext context;
    v1::SubmitRunResponse submitted;
    ASSERT_TRUE(runs_->SubmitRun(&context, submit, &submitted).ok());
    run_id_ = submitted.run_id();
    for (int i = 0; i < 2; ++i) {
      const v1::StageRef ref = agent_->NextAssignment();
      refs_[ref.stage()] = ref;
      agent_->Report(ref, v1::STAGE_RUNNING);
    }
    WaitUntilRunning();
  }

  void TearDown() override {
    agent_.reset();
    server_.reset();
    fs::remove_all(data_dir_);
  }

  void WaitUntilRunning() {
    for (int i = 0; i < 200; ++i) {
      auto run = server_->core().GetRun(run_id_);
      int running = 0;
      for (const auto& s : run->stages()) running += s.state() == v1::STAGE_RUNNING;
      if (running == 2) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "stages never ran";
  }

  // Uploads `data` as `path` for stage `stage`, announcing `sha256`; stops after
  // `send_bytes` bytes and cancels the call when that is short of the whole.
  // With `offset`, resumes: the header says so and sending starts there.
  // `before_cut` runs after the last byte is sent and before the cut.
  grpc::Status Upload(const std::string& stage, const std::string& path, const std::string& data,
                      const std::string& sha256, size_t send_bytes, size_t offset = 0,
                      const std::function<void()>& before_cut = nullptr) {
    grpc::ClientContext context;
    v1::UploadArtifactResponse response;
    auto writer = agents_->UploadArtifact(&context, &response);
    v1::UploadArtifactRequest request;
    *request.mutable_header()->mutable_stage() = refs_.at(stage);
    request.mutable_header()->set_path(path);
    request.mutable_header()->set_size(static_cast<int64_t>(data.size()));
    request.mutable_header()->set_sha256(sha256);
    request.mutable_header()->set_offset(static_cast<int64_t>(offset));
    writer->Write(request);
    for (size_t off = offset; off < send_bytes; off += 64 * 1024) {
      request.set_data(data.substr(off, std::min<size_t>(64 * 1024, send_bytes - off)));
      writer->Write(request);
    }
    if (send_bytes < data.size()) {
      if (before_cut) before_cut();
      context.TryCancel();  // the connection drops midway
    } else {
      writer->WritesDone();
    }
    return writer->Finish();
  }

  // As the agent's retrier does: UNAVAILABLE (the cut-off call is still being wound
  // up on the controller, holding the partial upload) is tried again.
  grpc::Status ResumeUpload(const std::string& path, const std::string& data, const std::string& sha256,
                            size_t offset) {
    grpc::Status status;
    for (int i = 0; i < 300; ++i) {
      status = Upload("a", path, data, sha256, data.size(), offset);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status;
  }

  // What the controller holds of an interrupted upload, as the agent asks it.
  int64_t HeldOffset(const std::string& stage, const std::string& sha256, size_t size) {
    grpc::ClientContext context;
    v1::ArtifactHeader header;
    *header.mutable_stage() = refs_.at(stage);
    header.set_sha256(sha256);
    header.set_size(static_cast<int64_t>(size));
    v1::UploadOffsetResponse response;
    grpc::Status st = agents_->ArtifactUploadOffset(&context, header, &response);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return response.offset();
  }

  // Cuts an upload of `data` off after `bytes`, once the controller holds them all
  // (a cancelled call may drop what is still in flight), and returns what it holds.
  int64_t UploadHalfAndCut(const std::string& path, const std::string& data, size_t bytes) {
    const std::string sha = Sha256Hex(data);
    EXPECT_FALSE(Upload("a", path, data, sha, bytes, 0, [&] {
                   for (int i = 0; i < 500 && HeldOffset("a", sha, data.size()) < static_cast<int64_t>(bytes); ++i) {
                     std::this_thread::sleep_for(std::chrono::milliseconds(10));
                   }
                 }).ok());
    return HeldOffset("a", sha, data.size());
  }

  struct StreamedFile {
    std::string path;
    std::string data;
    std::string end_sha256;  // what the end message says (the data's digest unless a test lies)
  };
  enum class Ending { kCommit, kCancel, kHalfClose };
  // One call as the agent streams it: per file a header without a digest, the data,
  // an end with the digest; then (kCommit) a commit naming how many files came.
  grpc::Status UploadStreamed(const std::string& stage, const std::vector<StreamedFile>& files, Ending ending) {
    grpc::ClientContext context;
    v1::UploadArtifactResponse response;
    auto writer = agents_->UploadArtifact(&context, &response);
    for (const StreamedFile& file : files) {
      v1::UploadArtifactRequest request;
      *request.mutable_header()->mutable_stage() = refs_.at(stage);
      request.mutable_header()->set_path(file.path);
      request.mutable_header()->set_size(static_cast<int64_t>(file.data.size()));
      writer->Write(request);
      request.set_data(file.data);
      writer->Write(request);
      request.mutable_end()->set_sha256(file.end_sha256.empty() ? Sha256Hex(file.data) : file.end_sha256);
      writer->Write(request);
    }
    if (ending == Ending::kCommit) {
      v1::UploadArtifactRequest commit;
      commit.mutable_commit()->set_files(static_cast<int32_t>(files.size()));
      writer->Write(commit);
    }
    if (ending == Ending::kCancel) {
      // Give the controller every message first: what it must not do is publish them.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      context.TryCancel();
    } else {
      writer->WritesDone();
    }
    return writer->Finish();
  }

  std::vector<v1::Artifact> Listed() {
    grpc::ClientContext context;
    v1::ListArtifactsRequest request;
    request.set_run_id(run_id_);
    v1::ListArtifactsResponse response;
    EXPECT_TRUE(runs_->ListArtifacts(&context, request, &response).ok());
    return {response.artifacts().begin(), response.artifacts().end()};
  }

  size_t FilesUnder(const std::string& sub) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(data_dir_ / sub)) n += e.is_regular_file();
    return n;
  }

  // Temp files go away when the server finishes the cancelled call; that is
  // asynchronous to the client, so give it a moment.
  bool TempDirEmpties() {
    for (int i = 0; i < 200; ++i) {
      if (FilesUnder("blobs/tmp") == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  fs::path data_dir_;
  std::unique_ptr<ControllerServer> server_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::RunService::Stub> runs_;
  std::unique_ptr<testing::ScriptedAgent> agent_;
  std::string run_id_;
  std::map<std::string, v1::StageRef> refs_;
};

std::string Content(size_t size, char seed) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(seed + i * 31 % 251);
  return data;
}

TEST_F(ArtifactUpload, CutOffUploadIsNeverListedLeavesNoTempFileAndCanBeRestarted) {
  const std::string data = Content(3 << 20, 'x');
  const std::string sha = Sha256Hex(data);
  grpc::Status cut = Upload("a", "/out/app.whl", data, sha, data.size() / 2);
  EXPECT_FALSE(cut.ok());
  EXPECT_TRUE(Listed().empty());
  EXPECT_TRUE(TempDirEmpties());
  EXPECT_EQ(FilesUnder("blobs/sha256"), 0u);

  grpc::Status again = Upload("a", "/out/app.whl", data, sha, data.size());
  ASSERT_TRUE(again.ok()) << again.error_message();
  ASSERT_EQ(Listed().size(), 1u);
  EXPECT_EQ(Listed()[0].sha256(), sha);
  EXPECT_EQ(Listed()[0].name(), "app.whl");
}

TEST_F(ArtifactUpload, CutOffUploadResumesFromTheStoredOffset) {
  const std::string data = Content(3 << 20, 'r');
  const std::string sha = Sha256Hex(data);
  // What arrived before the cut is kept, never listed and never readable as a blob.
  const int64_t held = UploadHalfAndCut("/out/big.bin", data, 1 << 20);
  ASSERT_EQ(held, 1 << 20);
  EXPECT_TRUE(Listed().empty());
  EXPECT_FALSE(server_->core().blobs().Contains(sha));

  // A resume from anywhere else is refused, and the held bytes survive it.
  grpc::Status wrong = ResumeUpload("/out/big.bin", data, sha, static_cast<size_t>(held) / 2);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << wrong.error_message();
  EXPECT_EQ(HeldOffset("a", sha, data.size()), held);

  // Only the rest is sent, and the whole is verified.
  grpc::Status resumed = ResumeUpload("/out/big.bin", data, sha, static_cast<size_t>(held));
  ASSERT_TRUE(resumed.ok()) << resumed.error_message();
  ASSERT_EQ(Listed().size(), 1u);
  EXPECT_EQ(Listed()[0].sha256(), sha);
  auto stored = server_->core().blobs().Read(sha, 0, static_cast<int64_t>(data.size()) + 1);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(*stored == data);
  EXPECT_EQ(HeldOffset("a", sha, data.size()), 0);
}

TEST_F(ArtifactUpload, ResumedUploadWithWrongContentIsRefusedAndItsPartIsDiscarded) {
  const std::string data = Content(2 << 20, 'w');
  const std::string sha = Sha256Hex(data);
  const int64_t held = UploadHalfAndCut("/out/w.bin", data, 1 << 20);
  ASSERT_EQ(held, 1 << 20);
  std::string tampered = data;
  tampered[data.size() - 1] ^= 1;
  grpc::Status refused = ResumeUpload("/out/w.bin", tampered, sha, static_cast<size_t>(held));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::DATA_LOSS) << refused.error_message();
  EXPECT_TRUE(Listed().empty());
  EXPECT_EQ(HeldOffset("a", sha, data.size()), 0);
}

TEST_F(ArtifactUpload, UploadNotMatchingItsAnnouncedDigestIsRefusedAndNotListed) {
  const std::string data = Content(1 << 20, 'y');
  grpc::Status refused = Upload("a", "/out/app.whl", data, Sha256Hex("something else"), data.size());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::DATA_LOSS) << refused.error_message();
  EXPECT_TRUE(Listed().empty());
  EXPECT_TRUE(TempDirEmpties());
  EXPECT_EQ(FilesUnder("blobs/sha256"), 0u);
}

TEST_F(ArtifactUpload, TwoStagesUploadingTheSameContentStoreItOnce) {
  const std::string data = Content(2 << 20, 'z');
  const std::string sha = Sha256Hex(data);
  ASSERT_TRUE(Upload("a", "/dist/lib-a.whl", data, sha, data.size()).ok());
  ASSERT_TRUE(Upload("b", "/dist/lib-b.whl", data, sha, data.size()).ok());
  EXPECT_EQ(Listed().size(), 2u);
  EXPECT_EQ(FilesUnder("blobs/sha256"), 1u);
}

TEST_F(ArtifactUpload, UploadForAStageThatIsNotRunningIsRefused) {
  refs_["a"].set_attempt(7);
  const std::string data = Content(1024, 'q');
  grpc::Status refused = Upload("a", "/out/x.bin", data, Sha256Hex(data), data.size());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
  EXPECT_TRUE(Listed().empty());
}

TEST_F(ArtifactUpload, StreamedFilesOfOneCallArePublishedTogetherAtItsCommit) {
  std::vector<StreamedFile> files;
  for (int i = 0; i < 50; ++i) files.push_back({absl::StrCat("/out/f", i), Content(1000 + i, 'a' + i % 20), ""});
  files.push_back({"/out/big.bin", Content(3 << 20, 'b'), ""});
  ASSERT_TRUE(UploadStreamed("a", files, Ending::kCommit).ok());
  const std::vector<v1::Artifact> listed = Listed();
  ASSERT_EQ(listed.size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(listed[i].path(), files[i].path);
    EXPECT_EQ(listed[i].sha256(), Sha256Hex(files[i].data));
    EXPECT_EQ(listed[i].size(), static_cast<int64_t>(files[i].data.size()));
  }
  EXPECT_EQ(FilesUnder("blobs/sha256"), files.size());
  EXPECT_TRUE(TempDirEmpties());
}

TEST_F(ArtifactUpload, AStreamedCallCancelledOrEndedBeforeItsCommitPublishesNothing) {
  const std::vector<StreamedFile> files = {{"/out/a.whl", Content(5000, 'a'), ""},
                                           {"/out/b.whl", Content(7000, 'b'), ""}};
  EXPECT_FALSE(UploadStreamed("a", files, Ending::kCancel).ok());
  EXPECT_EQ(UploadStreamed("a", files, Ending::kHalfClose).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_TRUE(Listed().empty());
  EXPECT_TRUE(TempDirEmpties());
  EXPECT_EQ(FilesUnder("blobs/sha256"), 0u);
}

TEST_F(ArtifactUpload, AStreamedFileWhoseEndNamesAnotherDigestFailsTheWholeCall) {
  const std::vector<StreamedFile> files = {{"/out/good.whl", Content(5000, 'g'), ""},
                                           {"/out/bad.whl", Content(6000, 'h'), Sha256Hex("other content")}};
  grpc::Status refused = UploadStreamed("a", files, Ending::kCommit);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::DATA_LOSS) << refused.error_message();
  EXPECT_TRUE(Listed().empty());
  EXPECT_TRUE(TempDirEmpties());
  EXPECT_EQ(FilesUnder("blobs/sha256"), 0u);
}

TEST_F(ArtifactUpload, AFileOfContentAlreadyHeldNeedsNoData) {
  const std::string data = Content(4096, 'k');
  ASSERT_TRUE(UploadStreamed("a", {{"/out/one.bin", data, ""}}, Ending::kCommit).ok());
  // As a hard link in the container is sent: the digest, offset == size, no data.
  grpc::ClientContext context;
  v1::UploadArtifactResponse response;
  auto writer = agents_->UploadArtifact(&context, &response);
  v1::UploadArtifactRequest request;
  *request.mutable_header()->mutable_stage() = refs_.at("b");
  request.mutable_header()->set_path("/out/same.bin");
  request.mutable_header()->set_size(static_cast<int64_t>(data.size()));
  request.mutable_header()->set_sha256(Sha256Hex(data));
  request.mutable_header()->set_offset(static_cast<int64_t>(data.size()));
  writer->Write(request);
  request.mutable_commit()->set_files(1);
  writer->Write(request);
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  ASSERT_EQ(Listed().size(), 2u);
  EXPECT_EQ(Listed()[1].sha256(), Sha256Hex(data));
  EXPECT_EQ(FilesUnder("blobs/sha256"), 1u);
}

// The downloads the CLI makes, against the files the scripted agent uploaded.
class ArtifactDownload : public ArtifactUpload {
 protected:
  // Uploads `contents` from stage "a" as /out/f<i> in one streamed call.
  std::vector<v1::Artifact> Publish(const std::vector<std::string>& contents) {
    std::vector<StreamedFile> files;
    for (size_t i = 0; i < contents.size(); ++i) files.push_back({absl::StrCat("/out/f", i), contents[i], ""});
    EXPECT_TRUE(UploadStreamed("a", files, Ending::kCommit).ok());
    std::vector<v1::Artifact> listed = Listed();
    std::sort(listed.begin(), listed.end(), [](const v1::Artifact& x, const v1::Artifact& y) {
      return std::stoi(x.name().substr(1)) < std::stoi(y.name().substr(1));
    });
    return listed;
  }

  DockyardClient Client() { return DockyardClient(server_->address(), testing::AdminCredentials(data_dir_.string())); }

  static std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

TEST_F(ArtifactDownload, ManyFilesComeInOneCallEachWholeEvenEmptyLargeOrTheSameContentTwice) {
  std::vector<std::string> contents;
  for (int i = 0; i < 300; ++i) contents.push_back(Content(100 + i, static_cast<char>('a' + i % 26)));
  contents.push_back("");                        // empty: still a file
  contents.push_back(Content(3 << 20, 'L'));      // spans several messages
  contents.push_back(contents[5]);               // the same content as another file
  const std::vector<v1::Artifact> artifacts = Publish(contents);
  ASSERT_EQ(artifacts.size(), contents.size());
  const fs::path target = data_dir_ / "target";
  fs::create_directories(target);
  std::vector<const v1::Artifact*> which;
  std::vector<std::string> dests;
  for (const v1::Artifact& artifact : artifacts) {
    which.push_back(&artifact);
    dests.push_back((target / artifact.name()).string());
  }
  size_t in_place = 0;
  const absl::Status st = Client().DownloadArtifacts(run_id_, which, dests, in_place);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(in_place, contents.size());
  for (size_t i = 0; i < contents.size(); ++i) EXPECT_EQ(Read(dests[i]), contents[i]) << dests[i];
  EXPECT_EQ(std::distance(fs::directory_iterator(target), fs::directory_iterator()), static_cast<std::ptrdiff_t>(contents.size()));
}

TEST_F(ArtifactDownload, ADigestThatIsNotTheRunsArtifactIsRefusedAndNothingIsWritten) {
  const std::vector<v1::Artifact> artifacts = Publish({"one", "two"});
  ASSERT_EQ(artifacts.size(), 2u);
  v1::Artifact stranger = artifacts[1];
  stranger.set_sha256(Sha256Hex("held by no run"));
  const fs::path target = data_dir_ / "target";
  fs::create_directories(target);
  size_t in_place = 0;
  const absl::Status st = Client().DownloadArtifacts(run_id_, {&artifacts[0], &stranger},
                                                     {(target / "one").string(), (target / "two").string()}, in_place);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(stranger.sha256()));
  EXPECT_EQ(in_place, 0u);
  EXPECT_TRUE(fs::is_empty(target));
}

TEST_F(ArtifactDownload, ContentThatDoesNotMatchItsDigestStopsAtThatFileLeavingTheOnesBefore) {
  const std::vector<v1::Artifact> artifacts = Publish({"first", "second", "third"});
  ASSERT_EQ(artifacts.size(), 3u);
  // The blob of the second file rots on the controller's disk.
  const fs::path blob = data_dir_ / "blobs" / "sha256" / artifacts[1].sha256().substr(0, 2) / artifacts[1].sha256();
  ASSERT_TRUE(fs::exists(blob)) << blob;
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(blob, std::ios::binary | std::ios::trunc) << "rotten";
  const fs::path target = data_dir_ / "target";
  fs::create_directories(target);
  std::vector<std::string> dests;
  for (const v1::Artifact& artifact : artifacts) dests.push_back((target / artifact.name()).string());
  size_t in_place = 0;
  const absl::Status st =
      Client().DownloadArtifacts(run_id_, {&artifacts[0], &artifacts[1], &artifacts[2]}, dests, in_place);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_EQ(in_place, 1u);
  EXPECT_EQ(Read(dests[0]), "first");
  EXPECT_FALSE(fs::exists(dests[1]));
  EXPECT_FALSE(fs::exists(dests[2]));
  EXPECT_EQ(std::distance(fs::directory_iterator(target), fs::directory_iterator()), 1);  // no temp file left
}

}  // namespace
}  // namespace dockyard
