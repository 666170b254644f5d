// DockerEngineClient against the real engine on /var/run/docker.sock, using the local
// dockyard/busybox image. Every container and volume carries a label unique to the test
// and is removed in TearDown, whatever the test did.
#include "agent/docker_engine_client.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dockyard {
namespace {

using ::testing::HasSubstr;

constexpr char kImage[] = "dockyard/busybox";
constexpr char kLabelKey[] = "dockyard.test";

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Numbers(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) absl::StrAppend(&s, i, "\n");
  return s;
}

struct Output {
  std::string out;
  std::string err;
  DockerClient::OutputSink Sink() {
    return [this](OutputStream s, std::string_view bytes) {
      (s == OutputStream::kStdout ? out : err).append(bytes);
    };
  }
};

class DockerEngineClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    label_value_ = absl::StrCat(getpid(), "-", counter++);
    label_ = absl::StrCat(kLabelKey, "=", label_value_);
    tmp_ = std::filesystem::temp_directory_path() / absl::StrCat("dockyard-dec-", label_value_);
    std::filesystem::create_directories(tmp_);
    ASSERT_TRUE(docker_.Ping().ok()) << "no docker engine on /var/run/docker.sock";
  }

  void TearDown() override {
    auto containers = docker_.ListContainers(label_);
    EXPECT_TRUE(containers.ok()) << containers.status();
    if (containers.ok()) {
      for (const auto& c : *containers) EXPECT_TRUE(docker_.RemoveContainer(c.id).ok());
    }
    auto volumes = docker_.ListVolumes(label_);
    EXPECT_TRUE(volumes.ok()) << volumes.status();
    if (volumes.ok()) {
      for (const auto& v : *volumes) EXPECT_TRUE(docker_.RemoveVolume(v).ok());
    }
    std::filesystem::remove_all(tmp_);
  }

  ContainerSpec Spec(std::vector<std::string> cmd) {
    ContainerSpec spec;
    spec.image = kImage;
    spec.cmd = std::move(cmd);
    spec.labels = {{kLabelKey, label_value_}};
    return spec;
  }

  std::string VolumeName(const std::string& suffix) {
    return absl::StrCat("dockyard-test-", label_value_, "-", suffix);
  }

  // Creates, starts, follows to the end and waits; returns the exit code.
  int64_t Run(const ContainerSpec& spec, Output* output) {
    auto id = docker_.CreateContainer(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return -1000;
    EXPECT_TRUE(docker_.StartContainer(*id).ok());
    absl::Status logs = docker_.FollowLogs(*id, output->Sink());
    EXPECT_TRUE(logs.ok()) << logs;
    auto code = docker_.WaitContainer(*id);
    EXPECT_TRUE(code.ok()) << code.status();
    return code.ok() ? *code : -1000;
  }

  DockerEngineClient docker_;
  std::string label_value_;
  std::string label_;
  std::filesystem::path tmp_;
};

TEST_F(DockerEngineClientTest, RunsAContainerAndReportsItsExitCode) {
  Output output;
  EXPECT_EQ(Run(Spec({"sh", "-c", "echo ran; exit 7"}), &output), 7);
  EXPECT_EQ(output.out, "ran\n");
  EXPECT_EQ(output.err, "");
}

TEST_F(DockerEngineClientTest, AppliesEnvAndWorkdir) {
  ContainerSpec spec = Spec({"sh", "-c", "echo \"$GREETING\"; pwd"});
  spec.env = {"GREETING=hello there"};
  spec.workdir = "/build/here";
  Output output;
  EXPECT_EQ(Run(spec, &output), 0);
  EXPECT_EQ(output.out, "hello there\n/build/here\n");
}

TEST_F(DockerEngineClientTest, FollowLogsDeliversBothStreamsApartCompleteAndInOrder) {
  constexpr int kLines = 100000;
  // Both streams are written at the same time, so their frames interleave on the wire.
  auto id = docker_.CreateContainer(Spec(
      {"sh", "-c", absl::StrCat("seq 1 ", kLines, " & seq 1 ", kLines, " >&2; wait")}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  Output output;
  ASSERT_TRUE(docker_.FollowLogs(*id, output.Sink()).ok());
  auto code = docker_.WaitContainer(*id);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  const std::string expected = Numbers(kLines);
  EXPECT_EQ(output.out.size(), expected.size());
  EXPECT_TRUE(output.out == expected) << "stdout differs from seq 1 " << kLines;
  EXPECT_EQ(output.err.size(), expected.size());
  EXPECT_TRUE(output.err == expected) << "stderr differs from seq 1 " << kLines;
}

TEST_F(DockerEngineClientTest, AttachingBeforeStartDeliversBothStreamsCompleteAndInOrder) {
  constexpr int kLines = 100000;
  auto id = docker_.CreateContainer(Spec(
      {"sh", "-c", absl::StrCat("echo first; seq 1 ", kLines, " & seq 1 ", kLines, " >&2; wait")}));
  ASSERT_TRUE(id.ok()) << id.status();
  Output output;
  absl::Notification attached;
  absl::Status streamed;
  std::thread reader([&] { streamed = docker_.AttachOutput(*id, [&] { attached.Notify(); }, output.Sink()); });
  ASSERT_TRUE(attached.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  reader.join();
  ASSERT_TRUE(streamed.ok()) << streamed;
  auto code = docker_.WaitContainer(*id);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  const std::string expected = Numbers(kLines);
  EXPECT_TRUE(output.out == "first\n" + expected) << "stdout differs: " << output.out.size() << " bytes";
  EXPECT_TRUE(output.err == expected) << "stderr differs: " << output.err.size() << " bytes";
}

TEST_F(DockerEngineClientTest, FollowLogsAfterExitReplaysTheWholeOutput) {
  auto id = docker_.CreateContainer(Spec({"sh", "-c", "echo out; echo err >&2"}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  ASSERT_TRUE(docker_.WaitContainer(*id).ok());
  Output output;
  ASSERT_TRUE(docker_.FollowLogs(*id, output.Sink()).ok());
  EXPECT_EQ(output.out, "out\n");
  EXPECT_EQ(output.err, "err\n");
}

// Pins the engine behaviour behind "call FollowLogs and WaitContainer after start".
TEST_F(DockerEngineClientTest, FollowAndWaitReturnAtOnceForAContainerNotYetStarted) {
  auto id = docker_.CreateContainer(Spec({"sh", "-c", "echo never; exit 3"}));
  ASSERT_TRUE(id.ok()) << id.status();
  Output output;
  ASSERT_TRUE(docker_.FollowLogs(*id, output.Sink()).ok());
  EXPECT_EQ(output.out, "");
  auto code = docker_.WaitContainer(*id);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST_F(DockerEngineClientTest, MissingImageIsNotFoundNamingTheImage) {
  const std::string image = absl::StrCat("dockyard/nope-", label_value_);
  auto exists = docker_.ImageExists(image);
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE(*exists);

  ContainerSpec spec = Spec({"true"});
  spec.image = image;
  auto id = docker_.CreateContainer(spec);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(id.status().message()), HasSubstr(absl::StrCat("\"", image, "\"")));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("never pulls"));
}

TEST_F(DockerEngineClientTest, ImageExistsFindsTheLocalImage) {
  auto exists = docker_.ImageExists(kImage);
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_TRUE(*exists);
  auto tagged = docker_.ImageExists(absl::StrCat(kImage, ":latest"));
  ASSERT_TRUE(tagged.ok()) << tagged.status();
  EXPECT_TRUE(*tagged);
}

TEST_F(DockerEngineClientTest, PutArchiveLandsAFileTheContainerCanRead) {
  std::filesystem::create_directories(tmp_ / "src/inbox");
  std::ofstream(tmp_ / "src/inbox/hello.txt") << "hello from the host\n";
  const std::string tar = (tmp_ / "in.tar").string();
  ASSERT_EQ(std::system(absl::StrCat("tar -C ", (tmp_ / "src").string(), " -cf ", tar,
                                     " inbox").c_str()),
            0);

  auto id = docker_.CreateContainer(Spec({"cat", "/inbox/hello.txt"}));
  ASSERT_TRUE(id.ok()) << id.status();
  absl::Status put = docker_.PutArchive(*id, "/", tar);
  ASSERT_TRUE(put.ok()) << put;
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  Output output;
  ASSERT_TRUE(docker_.FollowLogs(*id, output.Sink()).ok());
  auto code = docker_.WaitContainer(*id);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << output.err;
  EXPECT_EQ(output.out, "hello from the host\n");
}

TEST_F(DockerEngineClientTest, PutArchiveIntoAMissingDirectoryIsNotFound) {
  const std::string tar = (tmp_ / "empty.tar").string();
  ASSERT_EQ(std::system(absl::StrCat("tar -cf ", tar, " -T /dev/null").c_str()), 0);
  auto id = docker_.CreateContainer(Spec({"true"}));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(docker_.PutArchive(*id, "/no/such/dir", tar).code(), absl::StatusCode::kNotFound);
}

TEST_F(DockerEngineClientTest, GetArchiveReturnsAFileMadeInTheContainer) {
  auto id = docker_.CreateContainer(
      Spec({"sh", "-c", "mkdir -p /out && echo built-artifact > /out/result.txt"}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  auto code = docker_.WaitContainer(*id);
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0);

  // The container has exited: archives still come out of stopped containers.
  const std::string tar = (tmp_ / "out.tar").string();
  absl::Status got = docker_.GetArchive(*id, "/out", tar);
  ASSERT_TRUE(got.ok()) << got;
  std::filesystem::create_directories(tmp_ / "x");
  ASSERT_EQ(std::system(absl::StrCat("tar -C ", (tmp_ / "x").string(), " -xf ", tar).c_str()), 0);
  EXPECT_EQ(ReadFile(tmp_ / "x/out/result.txt"), "built-artifact\n");
}

TEST_F(DockerEngineClientTest, GetArchiveOfAMissingPathIsNotFoundAndLeavesNoFile) {
  auto id = docker_.CreateContainer(Spec({"true"}));
  ASSERT_TRUE(id.ok()) << id.status();
  const std::filesystem::path tar = tmp_ / "none.tar";
  EXPECT_EQ(docker_.GetArchive(*id, "/no/such/path", tar.string()).code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(tar));
}

TEST_F(DockerEngineClientTest, ListContainersFindsContainersByLabel) {
  ContainerSpec spec = Spec({"true"});
  spec.labels["dockyard.role"] = "probe";
  auto id = docker_.CreateContainer(spec);
  ASSERT_TRUE(id.ok()) << id.status();

  auto found = docker_.ListContainers(label_);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, *id);
  EXPECT_EQ((*found)[0].state, "created");
  EXPECT_EQ((*found)[0].labels.at("dockyard.role"), "probe");

  auto by_key = docker_.ListContainers("dockyard.role");
  ASSERT_TRUE(by_key.ok()) << by_key.status();
  bool seen = false;
  for (const auto& c : *by_key) seen |= c.id == *id;
  EXPECT_TRUE(seen);

  auto none = docker_.ListContainers(absl::StrCat(kLabelKey, "=", label_value_, "-other"));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_F(DockerEngineClientTest, KillContainerStopsASleepingContainerFast) {
  auto id = docker_.CreateContainer(Spec({"sleep", "1000"}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  // Already running: the engine answers 304, which is fine.
  EXPECT_TRUE(docker_.StartContainer(*id).ok());

  const auto start = std::chrono::steady_clock::now();
  absl::Status killed = docker_.KillContainer(*id);
  ASSERT_TRUE(killed.ok()) << killed;
  auto code = docker_.WaitContainer(*id);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 137);  // 128 + SIGKILL
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  EXPECT_TRUE(docker_.KillContainer(*id).ok()) << "killing a stopped container is OK";
}

TEST_F(DockerEngineClientTest, KillEndsAFollowOnAnotherThread) {
  auto id = docker_.CreateContainer(Spec({"sh", "-c", "echo started; exec sleep 1000"}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  Output output;
  absl::Status followed;
  std::thread follower([&] { followed = docker_.FollowLogs(*id, output.Sink()); });
  ASSERT_TRUE(docker_.KillContainer(*id).ok());
  follower.join();
  EXPECT_TRUE(followed.ok()) << followed;
}

TEST_F(DockerEngineClientTest, KillOfAMissingContainerIsNotFound) {
  EXPECT_EQ(docker_.KillContainer(absl::StrCat("dockyard-test-missing-", label_value_)).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DockerEngineClientTest, RemoveContainerIsOkTwice) {
  ContainerSpec spec = Spec({"sleep", "1000"});
  spec.name = absl::StrCat("dockyard-test-", label_value_);
  auto id = docker_.CreateContainer(spec);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(docker_.StartContainer(*id).ok());
  EXPECT_TRUE(docker_.RemoveContainer(*id).ok()) << "force-removes a running container";
  EXPECT_TRUE(docker_.RemoveContainer(*id).ok()) << "already gone";
  auto left = docker_.ListContainers(label_);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(DockerEngineClientTest, MissingContainerIsNotFoundForStartLogsAndWait) {
  const std::string id = absl::StrCat("dockyard-test-missing-", label_value_);
  EXPECT_EQ(docker_.StartContainer(id).code(), absl::StatusCode::kNotFound);
  Output output;
  EXPECT_EQ(docker_.FollowLogs(id, output.Sink()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(docker_.WaitContainer(id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DockerEngineClientTest, VolumesCanBeCreatedListedAndRemoved) {
  const std::string name = VolumeName("cache");
  ASSERT_TRUE(docker_.CreateVolume(name, {{kLabelKey, label_value_}}).ok());
  EXPECT_TRUE(docker_.CreateVolume(name, {{kLabelKey, label_value_}}).ok()) << "already exists";

  auto listed = docker_.ListVolumes(label_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, std::vector<std::string>{name});

  ASSERT_TRUE(docker_.RemoveVolume(name).ok());
  EXPECT_TRUE(docker_.RemoveVolume(name).ok()) << "already gone";
  listed = docker_.ListVolumes(label_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());
}

TEST_F(DockerEngineClientTest, VolumeKeepsFilesForTheNextContainer) {
  const std::string name = VolumeName("shared");
  ASSERT_TRUE(docker_.CreateVolume(name, {{kLabelKey, label_value_}}).ok());

  ContainerSpec writer = Spec({"sh", "-c", "echo cached-bytes > /cache/entry"});
  writer.binds = {absl::StrCat(name, ":/cache")};
  Output ignored;
  ASSERT_EQ(Run(writer, &ignored), 0) << ignored.err;

  ContainerSpec reader = Spec({"cat", "/cache/entry"});
  reader.binds = {absl::StrCat(name, ":/cache")};
  Output output;
  EXPECT_EQ(Run(reader, &output), 0) << output.err;
  EXPECT_EQ(output.out, "cached-bytes\n");

  // Containers still refer to it, stopped or not.
  EXPECT_EQ(docker_.RemoveVolume(name).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DockerEngineClientTest, OneClientServesManyThreadsAtOnce) {
  constexpr int kThreads = 4;
  std::vector<Output> outputs(kThreads);
  std::vector<int64_t> codes(kThreads, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      codes[i] = Run(Spec({"sh", "-c", absl::StrCat("seq 1 2000; exit ", i)}), &outputs[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(codes[i], i);
    EXPECT_TRUE(outputs[i].out == Numbers(2000)) << "thread " << i;
  }
}

TEST_F(DockerEngineClientTest, UnreachableSocketIsUnavailableNamingIt) {
  const std::string socket = (tmp_ / "no-engine.sock").string();
  DockerEngineClient nowhere(socket);
  absl::Status st = nowhere.Ping();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr(socket));
}

}  // namespace
}  // namespace dockyard
