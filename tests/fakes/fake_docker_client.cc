#include "tests/fakes/fake_docker_client.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dockyard::testing {

FakeDockerClient::FakeDockerClient() = default;

void FakeDockerClient::AddImage(const std::string& ref, const std::string& id) {
  absl::MutexLock lock(&mu_);
  images_[ref] = id;
}

void FakeDockerClient::SetProgram(const std::string& script, Program program) {
  absl::MutexLock lock(&mu_);
  programs_[script] = std::move(program);
}

void FakeDockerClient::FailNext(const std::string& method, absl::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[method] = std::move(status);
}

std::vector<std::string> FakeDockerClient::Calls() {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<ContainerSpec> FakeDockerClient::Created() {
  absl::MutexLock lock(&mu_);
  return created_;
}

std::set<std::string> FakeDockerClient::LiveContainers() {
  absl::MutexLock lock(&mu_);
  std::set<std::string> out;
  for (const auto& [id, c] : containers_) out.insert(id);
  return out;
}

bool FakeDockerClient::Killed(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return killed_.count(id) != 0;
}

absl::Status FakeDockerClient::Enter(const std::string& method) {
  calls_.push_back(method);
  auto it = failures_.find(method);
  if (it == failures_.end()) return absl::OkStatus();
  absl::Status st = std::move(it->second);
  failures_.erase(it);
  return st;
}

void FakeDockerClient::Exit(Container& c, int64_t code) {
  if (c.state == "exited") return;
  c.state = "exited";
  c.exit_code = code;
}

void FakeDockerClient::AwaitStateOtherThan(const std::string& id, std::initializer_list<const char*> states) {
  auto moved_on = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = containers_.find(id);
    if (it == containers_.end()) return true;
    for (const char* state : states) {
      if (it->second.state == state) return false;
    }
    return true;
  };
  mu_.Await(absl::Condition(&moved_on));
}

absl::Status FakeDockerClient::Ping() {
  absl::MutexLock lock(&mu_);
  return Enter("Ping");
}

absl::StatusOr<std::string> FakeDockerClient::ImageId(const std::string& image) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("ImageId"); !st.ok()) return st;
  auto it = images_.find(image);
  if (it == images_.end()) return absl::NotFoundError(absl::StrCat("no image \"", image, "\" on this agent"));
  return it->second;
}

absl::Status FakeDockerClient::BuildImage(const ImageBuildSpec& spec, const std::function<void(std::string_view)>&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("BuildImage"); !st.ok()) return st;
  images_[spec.tag] = "sha256:built-" + spec.tag;
  return absl::OkStatus();
}

absl::Status FakeDockerClient::PullImage(const std::string& image, const RegistryAuth*,
                                         const std::function<void(std::string_view)>&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("PullImage"); !st.ok()) return st;
  return absl::FailedPreconditionError(absl::StrCat("pulling ", image, " failed: no registry in this fake"));
}

absl::StatusOr<std::vector<ImageSummary>> FakeDockerClient::ListImages(const std::string&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("ListImages"); !st.ok()) return st;
  return std::vector<ImageSummary>{};
}

absl::Status FakeDockerClient::RemoveImage(const std::string& image) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("RemoveImage"); !st.ok()) return st;
  images_.erase(image);
  return absl::OkStatus();
}

absl::StatusOr<bool> FakeDockerClient::OomKilled(const std::string&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("OomKilled"); !st.ok()) return st;
  return false;
}

absl::StatusOr<std::vector<std::string>> FakeDockerClient::ContainerEnv(const std::string& container) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("ContainerEnv"); !st.ok()) return st;
  auto it = containers_.find(container);
  if (it == containers_.end()) return absl::NotFoundError(absl::StrCat("no container ", container));
  return it->second.spec.env;
}

absl::StatusOr<std::string> FakeDockerClient::CreateContainer(const ContainerSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("CreateContainer"); !st.ok()) return st;
  if (images_.count(spec.image) == 0) {
    return absl::NotFoundError(absl::StrCat("image \"", spec.image, "\" not found on this agent"));
  }
  const std::string id = absl::StrCat("fake-", ++next_id_);
  Container c{spec, {}, "created", 0, false};
  if (!spec.cmd.empty()) {
    if (auto p = programs_.find(spec.cmd.back()); p != programs_.end()) c.program = p->second;
  }
  containers_.emplace(id, std::move(c));
  created_.push_back(spec);
  return id;
}

absl::Status FakeDockerClient::PutArchive(const std::string& id, const std::string&, const std::string&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("PutArchive"); !st.ok()) return st;
  if (containers_.count(id) == 0) return absl::NotFoundError(absl::StrCat("no container ", id));
  return absl::OkStatus();
}

absl::Status FakeDockerClient::StreamArchive(const std::string& id, const std::string& path, int64_t,
                                             const std::function<absl::Status(std::string_view)>&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("StreamArchive"); !st.ok()) return st;
  return absl::NotFoundError(absl::StrCat("no ", path, " in container ", id));
}

absl::Status FakeDockerClient::StartContainer(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("StartContainer"); !st.ok()) return st;
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError(absl::StrCat("no container ", id));
  Container& c = it->second;
  if (c.state == "running") return absl::OkStatus();
  c.state = "running";
  if (!c.program.runs_until_killed) Exit(c, c.program.exit_code);
  return absl::OkStatus();
}

absl::StatusOr<FakeDockerClient::Output> FakeDockerClient::OutputOf(const std::string& method, const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter(method); !st.ok()) return st;
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError(absl::StrCat("no container ", id));
  return it->second.program.output;
}

absl::Status FakeDockerClient::FollowLogs(const std::string& id, const OutputSink& sink) {
  absl::StatusOr<Output> output = OutputOf("FollowLogs", id);
  if (!output.ok()) return output.status();
  for (const auto& [stream, data] : *output) sink(stream, data);
  // Following ends when the container does.
  absl::MutexLock lock(&mu_);
  AwaitStateOtherThan(id, {"created", "running"});
  return absl::OkStatus();
}

absl::Status FakeDockerClient::AttachOutput(const std::string& id, const std::function<void()>& attached,
                                            const OutputSink& sink) {
  absl::StatusOr<Output> output = OutputOf("AttachOutput", id);
  if (!output.ok()) return output.status();
  attached();
  {
    // The output flows once the container starts.
    absl::MutexLock lock(&mu_);
    AwaitStateOtherThan(id, {"created"});
  }
  return FollowLogs(id, sink);
}

absl::Status FakeDockerClient::ReadLogs(const std::string& id, const OutputSink& sink) {
  absl::StatusOr<Output> output = OutputOf("ReadLogs", id);
  if (!output.ok()) return output.status();
  for (const auto& [stream, data] : *output) sink(stream, data);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeDockerClient::WaitContainer(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("WaitContainer"); !st.ok()) return st;
  AwaitStateOtherThan(id, {"created", "running"});
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError(absl::StrCat("container ", id, " was removed"));
  return it->second.exit_code;
}

absl::StatusOr<ExecResult> FakeDockerClient::Exec(const std::string& id, const std::vector<std::string>&,
                                                  absl::Duration) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("Exec"); !st.ok()) return st;
  if (containers_.count(id) == 0) return absl::NotFoundError(absl::StrCat("no container ", id));
  return ExecResult{0, ""};
}

absl::Status FakeDockerClient::KillContainer(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("KillContainer"); !st.ok()) return st;
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError(absl::StrCat("no container ", id));
  killed_.insert(id);
  if (it->second.state == "running") Exit(it->second, 137);
  return absl::OkStatus();
}

absl::Status FakeDockerClient::RemoveContainer(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("RemoveContainer"); !st.ok()) return st;
  containers_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ContainerSummary>> FakeDockerClient::ListContainers(const std::string& label) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("ListContainers"); !st.ok()) return st;
  std::vector<ContainerSummary> out;
  const size_t eq = label.find('=');
  const std::string key = label.substr(0, eq);
  for (const auto& [id, c] : containers_) {
    auto it = c.spec.labels.find(key);
    if (!label.empty() && (it == c.spec.labels.end() || (eq != std::string::npos && it->second != label.substr(eq + 1)))) {
      continue;
    }
    out.push_back(ContainerSummary{id, images_.count(c.spec.image) ? images_[c.spec.image] : "", c.state, c.spec.labels});
  }
  return out;
}

absl::Status FakeDockerClient::CreateVolume(const std::string& name, const std::map<std::string, std::string>&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("CreateVolume"); !st.ok()) return st;
  volumes_.insert(name);
  return absl::OkStatus();
}

absl::Status FakeDockerClient::RemoveVolume(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("RemoveVolume"); !st.ok()) return st;
  volumes_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<bool> FakeDockerClient::VolumeExists(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("VolumeExists"); !st.ok()) return st;
  return volumes_.count(name) != 0;
}

absl::StatusOr<std::vector<std::string>> FakeDockerClient::ListVolumes(const std::string&) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = Enter("ListVolumes"); !st.ok()) return st;
  return std::vector<std::string>(volumes_.begin(), volumes_.end());
}

}  // namespace dockyard::testing
