// `dockyard run`'s fetch of a run's artifacts (DownloadAll) against a controller
// from before DownloadArtifacts: an in-process RunService that has only the older
// one-file call. Mixed versions are normal while a fleet is being upgraded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "common/sha256.h"
#include "tests/support/scratch_dir.h"

namespace dockyard {
namespace {

// A controller that knows ListArtifacts and DownloadArtifact, nothing newer.
class OlderRunService final : public v1::RunService::CallbackService {
 public:
  explicit OlderRunService(std::map<std::string, std::string> files) : files_(std::move(files)) {}

  grpc::ServerUnaryReactor* ListArtifacts(grpc::CallbackServerContext* context, const v1::ListArtifactsRequest*,
                                          v1::ListArtifactsResponse* response) override {
    for (const auto& [name, content] : files_) {
      v1::Artifact* artifact = response->add_artifacts();
      artifact->set_run_id("1");
      artifact->set_stage("build");
      artifact->set_name(name);
      artifact->set_size(static_cast<int64_t>(content.size()));
      artifact->set_sha256(Sha256Hex(content));
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<v1::BlobChunk>* DownloadArtifact(grpc::CallbackServerContext*,
                                                            const v1::DownloadArtifactRequest* request) override {
    ++downloads_;
    class Reply final : public grpc::ServerWriteReactor<v1::BlobChunk> {
     public:
      explicit Reply(std::string data) {
        chunk_.set_data(std::move(data));
        StartWriteAndFinish(&chunk_, {}, grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      v1::BlobChunk chunk_;
    };
    return new Reply(files_.at(request->name()));
  }

  int downloads() const { return downloads_; }

 private:
  const std::map<std::string, std::string> files_;
  std::atomic<int> downloads_{0};
};

TEST(DownloadAll, AControllerWithoutBatchedDownloadsIsAskedForEachFileAndEveryFileArrives) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 20; ++i) files[absl::StrCat("f", i, ".whl")] = std::string(100 + i, static_cast<char>('a' + i));
  OlderRunService service(files);
  int port = 0;
  std::unique_ptr<grpc::Server> server = grpc::ServerBuilder()
                                             .AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port)
                                             .RegisterService(&service)
                                             .BuildAndStart();
  ASSERT_NE(server, nullptr);
  DockyardClient client(absl::StrCat("127.0.0.1:", port), ClientSecurity{.insecure = true});
  const std::string dest = testing::FreshDir() + "/target";
  std::ostringstream out, err;
  EXPECT_EQ(DownloadAll(client, "1", dest, /*progress=*/false, out, err), kExitOk) << err.str();
  for (const auto& [name, content] : files) {
    std::ifstream in(dest + "/" + name, std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), content) << name;
  }
  EXPECT_EQ(service.downloads(), 20);
  server->Shutdown();
}

}  // namespace
}  // namespace dockyard
