#include "agent/service_pod.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/container_labels.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace dockyard {

namespace {

constexpr size_t kTailBytes = 2048;  // of a service's log, in a failure message
constexpr int kTailLines = 15;
// One probe may take this long before the next is tried (a hung probe must not
// outlast ready_timeout by much).
constexpr absl::Duration kMaxProbe = absl::Seconds(10);
constexpr absl::Duration kProbeInterval = absl::Milliseconds(250);

std::string LastLines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.size() > kTailLines) lines.erase(lines.begin(), lines.end() - kTailLines);
  if (lines.empty()) return "  (no output)";
  return absl::StrCat("  ", absl::StrJoin(lines, "\n  "));
}

}  // namespace

ServicePod::ServicePod(const v1::StageAssignment& assignment, ServicePodDeps deps)
    : assignment_(assignment), deps_(std::move(deps)) {}

ServicePod::~ServicePod() { Stop(/*upload_logs=*/false); }

std::string ServicePod::ContainerName(const std::string& suffix) const {
  const v1::StageRef& ref = assignment_.stage();
  return absl::StrCat("dockyard-", ref.run_id(), "-", ref.stage(), "-", ref.attempt(), "-", deps_.agent_name, "-",
                      suffix);
}

std::map<std::string, std::string> ServicePod::Labels(const std::string& role, const std::string& service) const {
  const v1::StageRef& ref = assignment_.stage();
  std::map<std::string, std::string> labels = {{kAgentLabel, deps_.agent_name},
                                               {kRunLabel, ref.run_id()},
                                               {kStageLabel, ref.stage()},
                                               {kAttemptLabel, absl::StrCat(ref.attempt())},
                                               {kRoleLabel, role}};
  if (!service.empty()) labels[kServiceLabel] = service;
  return labels;
}

absl::StatusOr<std::string> ServicePod::Start(const std::string& stage_image, const ContainerSpec& sandbox, const std::vector<std::string>& env,
                                              const std::function<bool()>& cancelled) {
  const v1::Stage& spec = assignment_.spec();
  ContainerSpec holder;
  holder.name = ContainerName("pod");
  holder.image = stage_image;
  // Idles until it is removed; its only job is to keep the namespace alive.
  holder.entrypoint = {"sleep"};
  holder.cmd = {"2147483647"};
  holder.network_mode = sandbox.network_mode;
  holder.labels = Labels("pod", "");
  holder.no_new_privileges = true;
  holder.memory_bytes = 64 << 20;
  holder.pids_limit = 16;
  std::vector<std::string> names;
  for (const v1::Service& service : spec.services()) {
    holder.extra_hosts.push_back(absl::StrCat(service.name(), ":127.0.0.1"));
    names.push_back(service.name());
  }
  auto created = deps_.docker->CreateContainer(holder);
  if (!created.ok()) return absl::Status(created.status().code(), absl::StrCat("services: ", created.status().message()));
  pod_ = *created;
  if (absl::Status st = deps_.docker->StartContainer(pod_); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("services: cannot start the network holder: ", st.message()));
  }
  const std::string network = absl::StrCat("container:", pod_);
  deps_.pump->WriteSystemLine(absl::StrCat("services ", absl::StrJoin(names, ", "),
                                           ": one loopback-only network with the stage; each name is 127.0.0.1"));

  for (const v1::Service& service : spec.services()) {
    if (cancelled()) return absl::CancelledError("cancelled while its services started");
    ContainerSpec container = sandbox;  // limits, capabilities, no new privileges
    container.name = ContainerName(service.name());
    container.image = service.image();
    container.cmd.clear();
    if (!service.run().empty()) container.cmd = {"sh", "-e", "-c", service.run()};
    container.workdir.clear();
    container.binds.clear();
    container.env = env;
    for (const auto& [key, value] : service.env()) container.env.push_back(absl::StrCat(key, "=", value));
    container.network_mode = network;
    container.labels = Labels("service", service.name());
    auto id = deps_.docker->CreateContainer(container);
    if (!id.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("service ", service.name(), ": ", id.status().message()));
    }
    auto member = std::make_unique<Member>();
    member->name = service.name();
    member->id = *id;
    if (absl::Status st = deps_.docker->StartContainer(*id); !st.ok()) {
      members_.push_back(std::move(member));
      return absl::FailedPreconditionError(absl::StrCat("service ", service.name(), " cannot start: ", st.message()));
    }
    deps_.pump->WriteSystemLine(absl::StrCat("service ", service.name(), " started from image ", service.image()));
    Member& started = *member;
    members_.push_back(std::move(member));
    started.watcher = std::thread([this, &started] { Watch(started); });
  }
  for (size_t i = 0; i < members_.size(); ++i) {
    const absl::Time began = absl::Now();
    RETURN_IF_ERROR(AwaitReady(spec.services(static_cast<int>(i)), *members_[i], cancelled));
    deps_.pump->WriteSystemLine(absl::StrCat("service ", members_[i]->name, " ready after ",
                                             absl::FormatDuration(absl::Trunc(absl::Now() - began, absl::Milliseconds(10)))));
  }
  absl::MutexLock lock(&mu_);
  running_ = true;
  return network;
}

absl::Status ServicePod::AwaitReady(const v1::Service& service, Member& member,
                                    const std::function<bool()>& cancelled) {
  const absl::Duration limit = absl::Milliseconds(service.ready_timeout_ms());
  const absl::Time deadline = absl::Now() + limit;
  std::string last;  // what the last probe said
  for (;;) {
    std::optional<int64_t> exited;
    {
      absl::MutexLock lock(&mu_);
      exited = member.exit_code;
    }
    if (exited) {
      return absl::FailedPreconditionError(absl::StrCat("service ", service.name(), " exited with code ", *exited,
                                                        " before it was ready; its last lines:\n",
                                                        ReadLog(member, "")));
    }
    if (service.ready().empty()) return absl::OkStatus();
    if (cancelled()) return absl::CancelledError("cancelled while its services got ready");
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    auto probe = deps_.docker->Exec(member.id, {"sh", "-c", service.ready()}, std::min(left, kMaxProbe));
    if (probe.ok() && probe->exit_code == 0) return absl::OkStatus();
    last = probe.ok() ? absl::StrCat("exit code ", probe->exit_code,
                                     probe->output_tail.empty() ? "" : ": " + probe->output_tail)
                      : std::string(probe.status().message());
    absl::SleepFor(std::min(kProbeInterval, std::max(absl::ZeroDuration(), deadline - absl::Now())));
  }
  // The stage fails: the service stops now, so its whole log can be read.
  (void)deps_.docker->KillContainer(member.id);
  return absl::FailedPreconditionError(absl::StrCat(
      "service ", service.name(), " was not ready within ", absl::FormatDuration(limit), " (ready: ", service.ready(),
      "; last try: ", absl::StripTrailingAsciiWhitespace(last), "); its last lines:\n", ReadLog(member, "")));
}

absl::Status ServicePod::Adopt() {
  const v1::StageRef& ref = assignment_.stage();
  auto found = deps_.docker->ListContainers(absl::StrCat(kRunLabel, "=", ref.run_id()));
  if (!found.ok()) return found.status();
  for (const ContainerSummary& c : *found) {
    auto label = [&](const char* key) {
      auto it = c.labels.find(key);
      return it == c.labels.end() ? std::string() : it->second;
    };
    if (label(kAgentLabel) != deps_.agent_name || label(kStageLabel) != ref.stage() ||
        label(kAttemptLabel) != absl::StrCat(ref.attempt())) {
      continue;
    }
    if (label(kRoleLabel) == "pod") pod_ = c.id;
    if (label(kRoleLabel) != "service") continue;
    {
      absl::MutexLock lock(&mu_);
      running_ = true;
    }
    auto member = std::make_unique<Member>();
    member->name = label(kServiceLabel);
    member->id = c.id;
    Member& adopted = *member;
    members_.push_back(std::move(member));
    adopted.watcher = std::thread([this, &adopted] { Watch(adopted); });
  }
  return absl::OkStatus();
}

void ServicePod::Watch(Member& member) {
  auto code = deps_.docker->WaitContainer(member.id);
  absl::MutexLock lock(&mu_);
  if (stopping_ || !code.ok()) return;
  member.exit_code = *code;
  if (!running_) return;  // still starting: Start's own error says it
  mu_.Unlock();
  deps_.pump->WriteSystemLine(absl::StrCat("service ", member.name, " exited with code ", *code,
                                           "; its last lines:\n", ReadLog(member, "")));
  mu_.Lock();
}

std::string ServicePod::ExitNote() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> notes;
  for (const auto& member : members_) {
    if (member->exit_code) notes.push_back(absl::StrCat("service ", member->name, " exited with code ", *member->exit_code));
  }
  return absl::StrJoin(notes, "; ");
}

std::string ServicePod::ReadLog(const Member& member, const std::string& path) {
  std::FILE* out = path.empty() ? nullptr : std::fopen(path.c_str(), "wb");
  int64_t written = 0;
  bool cut = false;
  std::string tail;
  (void)deps_.docker->ReadLogs(member.id, [&](OutputStream, std::string_view data) {
    tail.append(data);
    if (tail.size() > 2 * kTailBytes) tail.erase(0, tail.size() - kTailBytes);
    if (out == nullptr || cut) return;
    const int64_t room = deps_.max_service_log_bytes - written;
    const size_t n = static_cast<size_t>(std::min<int64_t>(room, static_cast<int64_t>(data.size())));
    written += static_cast<int64_t>(std::fwrite(data.data(), 1, n, out));
    cut = n < data.size();
  });
  if (out != nullptr) {
    if (cut) {
      const std::string note = absl::StrCat("\n[dockyard] service log cut at ", FormatBytes(deps_.max_service_log_bytes),
                                            " (the agent's --max_service_log_bytes)\n");
      std::fwrite(note.data(), 1, note.size(), out);
    }
    std::fclose(out);
  }
  if (tail.size() > kTailBytes) tail.erase(0, tail.size() - kTailBytes);
  return LastLines(tail);
}

void ServicePod::Stop(bool upload_logs) {
  if (stopped_) return;
  stopped_ = true;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  const v1::StageRef& ref = assignment_.stage();
  for (const auto& member : members_) (void)deps_.docker->KillContainer(member->id);
  for (const auto& member : members_) {
    if (member->watcher.joinable()) member->watcher.join();
  }
  for (const auto& member : members_) {
    if (upload_logs) {
      const std::string path =
          absl::StrCat(deps_.scratch_dir, "/service-", ref.run_id(), "-", ref.stage(), "-", ref.attempt(), "-",
                       member->name, ".log");
      (void)ReadLog(*member, path);
      auto uploaded = deps_.artifacts->UploadServiceLog(ref, member->name, path);
      std::error_code ec;
      std::filesystem::remove(path, ec);
      if (!uploaded.ok()) {
        deps_.pump->WriteSystemLine(
            absl::StrCat("service ", member->name, ": its log was not kept: ", uploaded.status().message()));
      }
    }
    if (absl::Status st = deps_.docker->RemoveContainer(member->id); !st.ok()) {
      Logger("agent")->warn("run={} stage={} attempt={} cannot remove service {}: {}", ref.run_id(), ref.stage(),
                            ref.attempt(), member->name, st.ToString());
    }
  }
  if (!pod_.empty()) (void)deps_.docker->RemoveContainer(pod_);
}

}  // namespace dockyard
