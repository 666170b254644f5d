#include "agent/stage_executor.h"

#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/snapshot_tree.h"
#include "common/tar_archive.h"
#include "common/units.h"
#include "common/utf8.h"

namespace dockyard {

namespace {

constexpr char kCacheVolumePrefix[] = "dockyard-run-";

}  // namespace

std::string CacheVolumeName(const std::string& run_id, const std::string& cache, const std::string& agent) {
  return absl::StrCat(kCacheVolumePrefix, run_id, "-", cache, "-", agent);
}

std::string RunOfCacheVolume(const std::string& volume) {
  // Run ids are numbers: the run ends at the first '-' after the prefix.
  if (volume.rfind(kCacheVolumePrefix, 0) != 0) return "";
  const std::string rest = volume.substr(sizeof(kCacheVolumePrefix) - 1);
  return rest.substr(0, rest.find('-'));
}

StageExecutor::StageExecutor(v1::StageAssignment assignment, ExecutorDeps deps, LogPump* pump)
    : assignment_(std::move(assignment)), deps_(std::move(deps)), pump_(pump) {}

bool StageExecutor::CancelRequested() {
  absl::MutexLock lock(&mu_);
  return cancel_state_ != v1::STAGE_STATE_UNSPECIFIED;
}

void StageExecutor::Cancel(v1::StageState state, const std::string& reason) {
  std::string container;
  {
    absl::MutexLock lock(&mu_);
    if (cancel_state_ == v1::STAGE_STATE_UNSPECIFIED) {
      cancel_state_ = state;
      cancel_reason_ = reason;
    }
    container = container_;
  }
  if (!container.empty()) (void)deps_.docker->KillContainer(container);
}

namespace {

// A secret named by the stage that the controller did not send.
absl::Status SecretNotSet(absl::string_view what, const std::string& name) {
  return absl::FailedPreconditionError(absl::StrCat(what, " ", name,
                                                    " is not set on the controller (deleted after the run was "
                                                    "submitted?); an admin sets it with `dockyard secrets set ",
                                                    name, "`"));
}

}  // namespace

absl::StatusOr<std::string> StageExecutor::ResolveImage() {
  const v1::Stage& spec = assignment_.spec();
  if (CancelRequested()) return absl::CancelledError("cancelled before start");
  if (!spec.pull_secret().empty()) {
    if (assignment_.pull_login().name() != spec.pull_secret()) {
      return SecretNotSet("pull secret", spec.pull_secret());
    }
    auto parsed = ParseRegistryLogin(assignment_.pull_login().value(), RegistryOf(spec.image()));
    if (!parsed.ok()) return absl::FailedPreconditionError(absl::StrCat("pull secret ", spec.pull_secret(), ": ", parsed.status().message()));
    login_ = *std::move(parsed);
  }
  for (const v1::Service& service : spec.services()) RETURN_IF_ERROR(Pull(service.image(), spec.pull()).status());
  if (spec.has_image_build()) {
    ASSIGN_OR_RETURN(BuiltImage built, deps_.images->Ensure(spec.image_build(), assignment_.source_digest(),
                                                            [this](std::string_view line) { pump_->WriteSystemLine(line); }));
    image_hold_ = std::move(built.hold);
    return built.tag;
  }
  ASSIGN_OR_RETURN(image_id_, Pull(spec.image(), spec.pull()));
  return spec.image();
}

absl::StatusOr<std::string> StageExecutor::Pull(const std::string& image, v1::PullPolicy policy) {
  return deps_.pulls->Ensure(image, policy, login_ ? &*login_ : nullptr,
                             [this](std::string_view line) { pump_->WriteSystemLine(line); });
}

absl::Status StageExecutor::CheckPinnedImage() {
  const v1::Stage& spec = assignment_.spec();
  if (spec.has_image_build()) {  // pinned by its inputs' digest: the tag
    auto id = deps_.docker->ImageId(image_);
    if (absl::IsNotFound(id.status())) return absl::OkStatus();  // creating the container says so, naming it
    if (!id.ok()) return id.status();
    image_id_ = *id;
    return absl::OkStatus();
  }
  auto pinned = assignment_.pinned_images().find(spec.image());
  if (pinned == assignment_.pinned_images().end()) {
    pump_->WriteSystemLine(absl::StrCat("image ", image_, " is ", image_id_, " here; the run's later stages run that"));
    return absl::OkStatus();
  }
  if (pinned->second != image_id_ && spec.pull() != v1::PULL_NEVER && spec.pull() != v1::PULL_ALWAYS) {
    // A stale copy on this host: the registry may still have what the run started with.
    pump_->WriteSystemLine(absl::StrCat("image ", image_, " is ", image_id_, " here, but the run pinned ",
                                        pinned->second, ": pulling it again"));
    absl::StatusOr<std::string> pulled = Pull(image_, v1::PULL_ALWAYS);
    if (pulled.ok()) image_id_ = *pulled;
    else pump_->WriteSystemLine(std::string(pulled.status().message()));
  }
  if (pinned->second != image_id_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "image ", image_, " on agent ", deps_.agent_name, " is ", image_id_, ", but this run's earlier stages ran ",
        pinned->second, ": the host's image differs, so the stage does not run (make the hosts' images agree, "
        "or run the pipeline again)"));
  }
  pump_->WriteSystemLine(absl::StrCat("image ", image_, " is ", image_id_, ", as pinned for the run"));
  return absl::OkStatus();
}

void StageExecutor::SetImage(v1::StageStatus& status) const {
  if (image_id_.empty()) return;
  status.set_image(assignment_.spec().image());
  status.set_image_id(image_id_);
}

std::vector<std::string> StageExecutor::CiEnv() const {
  const v1::StageRef& ref = assignment_.stage();
  return {"CI=true",
          absl::StrCat("DOCKYARD_RUN_ID=", ref.run_id()),
          absl::StrCat("DOCKYARD_PIPELINE=", assignment_.pipeline_name()),
          absl::StrCat("DOCKYARD_STAGE=", ref.stage()),
          absl::StrCat("DOCKYARD_ATTEMPT=", ref.attempt()),
          absl::StrCat("DOCKYARD_AGENT=", deps_.agent_name),
          absl::StrCat("DOCKYARD_SOURCE_DIGEST=", assignment_.source_digest())};
}

absl::StatusOr<std::string> StageExecutor::CreateContainer(const ContainerSpec& sandbox) {
  const v1::Stage& spec = assignment_.spec();
  const v1::StageRef& ref = assignment_.stage();
  ContainerSpec container = sandbox;
  container.name = absl::StrCat("dockyard-", ref.run_id(), "-", ref.stage(), "-", ref.attempt(), "-",
                                deps_.agent_name);
  container.image = image_;
  container.cmd.assign(spec.shell().begin(), spec.shell().end());
  if (container.cmd.empty()) container.cmd = {"sh", "-e", "-c"};
  container.cmd.push_back(spec.run());
  container.workdir = spec.workdir().empty() ? "/workspace" : spec.workdir();
  // The stage's own env: comes after the CI variables and wins.
  container.env = CiEnv();
  for (const auto& [key, value] : spec.env()) container.env.push_back(absl::StrCat(key, "=", value));
  for (const v1::SecretValue& secret : assignment_.secrets()) {
    container.env.push_back(absl::StrCat(secret.name(), "=", secret.value()));
  }
  container.labels = {{kAgentLabel, deps_.agent_name},
                      {kRunLabel, ref.run_id()},
                      {kStageLabel, ref.stage()},
                      {kAttemptLabel, absl::StrCat(ref.attempt())},
                      {kRoleLabel, "stage"}};
  for (const v1::CacheMount& mount : spec.caches()) {
    // Each run has its own volume per cache, holding exactly what this attempt
    // starts from (never what a failed attempt left).
    v1::CacheDigests start;
    for (const v1::CacheDigests& given : assignment_.cache_starts()) {
      if (given.name() == mount.name()) start = given;
    }
    const std::string volume = CacheVolumeName(ref.run_id(), mount.name(), deps_.agent_name);
    auto how = deps_.caches->Prepare(volume, start.consumed(), image_,
                                     {{kAgentLabel, deps_.agent_name}, {kRunLabel, ref.run_id()}});
    if (!how.ok()) {
      return absl::Status(how.status().code(), absl::StrCat("cache ", mount.name(), ": ", how.status().message()));
    }
    container.binds.push_back(absl::StrCat(volume, ":", mount.path(), mount.read_only() ? ":ro" : ""));
    pump_->WriteSystemLine(absl::StrCat(
        "cache ", mount.name(), " at ", mount.path(), mount.read_only() ? " (read-only)" : "", ": starts from ",
        start.consumed().empty() ? "empty" : start.consumed(), start.source().empty() ? "" : " (" + start.source() + ")",
        "; ", *how));
  }
  pump_->WriteSystemLine(absl::StrCat("image ", image_, ", network ",
                                      pod_ ? spec.network() + " (shared with its services)" : container.network_mode,
                                      ", workdir ", container.workdir, ", agent ", deps_.agent_name));
  if (spec.secrets_size() > 0) {
    pump_->WriteSystemLine(absl::StrCat("secrets ", absl::StrJoin(spec.secrets(), ", "),
                                        " in the environment; their values show as *** in this log"));
  }
  return deps_.docker->CreateContainer(container);
}

absl::Status CheckContainerLogDriver(const std::string& driver) {
  if (driver.empty() || driver == "local" || driver == "json-file" || driver == "journald") return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--container_log_driver=", driver, ": a restarted agent replays a stage's output from the engine's log, "
      "which only local, json-file and journald keep (\"\" for the engine's default)"));
}

absl::StatusOr<ContainerSpec> StageExecutor::Sandbox() {
  const SandboxPolicy& policy = deps_.sandbox;
  ContainerSpec container;
  container.network_mode = assignment_.spec().network().empty() ? "none" : assignment_.spec().network();
  if (container.network_mode != "none" && !policy.allow_network) {
    return absl::PermissionDeniedError(absl::StrCat("network ", container.network_mode, " is not allowed on agent ",
                                                    deps_.agent_name, " (its operator may allow it with --allow_network)"));
  }
  const v1::StageLimits& asked = assignment_.spec().limits();
  std::string notes;
  // The stage's own limit when it is lower; the agent's otherwise (said in the log).
  auto lower = [&](int64_t wanted, int64_t most, const std::string& what, const std::string& shown) {
    if (most <= 0) return wanted;
    if (wanted <= 0) return most;
    if (wanted > most) {
      absl::StrAppend(&notes, "; the stage asked for ", what, " ", shown, ", above this agent's limit");
      return most;
    }
    return wanted;
  };
  container.no_new_privileges = true;
  container.cap_add = kStageCapabilities;
  // The engine's default (json-file) spends more CPU on a chatty stage than the stage
  // itself; `local` writes compact records. Twice the replay size in two files keeps
  // the output from its start for a re-adopting agent, and the disk bounded.
  container.log_driver = deps_.container_log.driver;
  const int64_t replay = deps_.container_log.replay_bytes;
  if (replay <= 0 && container.log_driver == "local") container.log_driver = "json-file";  // local cannot keep all
  if (replay > 0 && (container.log_driver == "local" || container.log_driver == "json-file")) {
    container.log_options = {{"max-size", absl::StrCat(replay)}, {"max-file", "2"}};
    if (container.log_driver == "local") container.log_options["compress"] = "false";
  }
  container.memory_bytes = lower(asked.memory_bytes(), policy.max_memory_bytes, "memory", FormatBytes(asked.memory_bytes()));
  container.pids_limit = lower(asked.pids(), policy.max_pids, "pids", absl::StrCat(asked.pids()));
  const int64_t milli_cpus =
      lower(asked.milli_cpus(), policy.max_milli_cpus, "cpus", absl::StrFormat("%.2f", asked.milli_cpus() / 1000.0));
  container.nano_cpus = milli_cpus * 1000000;
  memory_limit_ = container.memory_bytes;
  pump_->WriteSystemLine(absl::StrCat(
      "sandbox: no new privileges; capabilities ", absl::StrJoin(container.cap_add, ","), " only; memory ",
      container.memory_bytes > 0 ? FormatBytes(container.memory_bytes) : "unlimited", " (no swap); pids ",
      container.pids_limit > 0 ? absl::StrCat(container.pids_limit) : "unlimited", "; cpus ",
      milli_cpus > 0 ? absl::StrFormat("%.2f", milli_cpus / 1000.0) : "unlimited", notes,
      assignment_.spec().services_size() > 0 ? "; the same for each service" : ""));
  return container;
}

void StageExecutor::MakePod() {
  pod_ = std::make_unique<ServicePod>(
      assignment_, ServicePodDeps{.docker = deps_.docker,
                                  .artifacts = deps_.artifacts,
                                  .pump = pump_,
                                  .agent_name = deps_.agent_name,
                                  .scratch_dir = deps_.scratch_dir,
                                  .max_service_log_bytes = deps_.max_service_log_bytes});
}

absl::Status StageExecutor::StartServices(ContainerSpec& sandbox) {
  if (assignment_.spec().services_size() == 0) return absl::OkStatus();
  MakePod();
  auto network = pod_->Start(image_, sandbox, CiEnv(), [this] { return CancelRequested(); });
  if (!network.ok()) return network.status();
  sandbox.network_mode = *network;
  return absl::OkStatus();
}

void StageExecutor::StopServices() {
  if (pod_) pod_->Stop(/*upload_logs=*/!CancelRequested());
}

absl::Status StageExecutor::ShipSource(const std::string& container) {
  const std::string& digest = assignment_.source_digest();
  if (digest.empty()) return absl::OkStatus();
  auto tar = deps_.sources->Get(digest);
  if (!tar.ok()) return tar.status();
  // The workdir does not exist before start, so the tree goes to "/" re-rooted.
  std::string workdir = assignment_.spec().workdir().empty() ? "/workspace" : assignment_.spec().workdir();
  while (!workdir.empty() && workdir.front() == '/') workdir.erase(0, 1);
  if (!workdir.empty() && workdir.back() != '/') workdir.push_back('/');
  const v1::StageRef& ref = assignment_.stage();
  const std::string prefixed =
      absl::StrCat(deps_.scratch_dir, "/source-", ref.run_id(), "-", ref.stage(), "-", ref.attempt(), ".tar");
  absl::Status st = PrefixTar(*tar, workdir, prefixed);
  if (st.ok()) st = deps_.docker->PutArchive(container, "/", prefixed);
  std::error_code ec;
  std::filesystem::remove(prefixed, ec);
  return st;
}

absl::Status StageExecutor::ShipInputs(const std::string& container) {
  if (assignment_.spec().inputs_size() == 0) return absl::OkStatus();
  const v1::StageRef& ref = assignment_.stage();
  const std::string tar =
      absl::StrCat(deps_.scratch_dir, "/inputs-", ref.run_id(), "-", ref.stage(), "-", ref.attempt(), ".tar");
  auto line = deps_.inputs->Pack(assignment_, tar);
  absl::Status st = line.ok() ? deps_.docker->PutArchive(container, "/", tar) : line.status();
  std::error_code ec;
  std::filesystem::remove(tar, ec);
  if (!st.ok()) return absl::Status(st.code(), absl::StrCat("cannot place the inputs: ", st.message()));
  pump_->WriteSystemLine(*line);
  return absl::OkStatus();
}

v1::StageStatus StageExecutor::Finish(v1::StageState state, int exit_code, const std::string& message) {
  {
    absl::MutexLock lock(&mu_);
    if (cancel_state_ != v1::STAGE_STATE_UNSPECIFIED) {
      state = cancel_state_;
      if (!cancel_reason_.empty()) {
        pump_->WriteSystemLine(absl::StrCat("stopped: ", cancel_reason_));
      }
    }
  }
  if (state == v1::STAGE_FAILED || state == v1::STAGE_TIMED_OUT) pump_->WriteSystemLine(message);  // masked there
  pump_->Finish();
  v1::StageStatus status;
  *status.mutable_stage() = assignment_.stage();
  status.set_state(state);
  status.set_exit_code(exit_code);
  // It may quote file names from the stage, or what a command printed.
  status.set_message(SanitizeUtf8(pump_->Mask(message)));
  SetImage(status);
  return status;
}

absl::Status StageExecutor::LoadSecrets(const std::vector<std::string>& env) {
  std::map<std::string, std::string> known;  // what the controller sent, or the container holds
  for (const v1::SecretValue& secret : assignment_.secrets()) known[secret.name()] = secret.value();
  for (const std::string& entry : env) {
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) known.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  std::vector<std::string> values;
  for (const std::string& name : assignment_.spec().secrets()) {
    auto it = known.find(name);
    if (it == known.end()) {
      return SecretNotSet("secret", name);
    }
    values.push_back(it->second);
  }
  if (const std::string& login = assignment_.pull_login().value(); !login.empty()) {
    values.push_back(login);
    if (auto parsed = ParseRegistryLogin(login, ""); parsed.ok()) values.push_back(parsed->password);
  }
  pump_->SetSecrets(values);
  return absl::OkStatus();
}

v1::StageStatus StageExecutor::Run(const std::function<void()>& on_running) {
  const v1::StageRef& ref = assignment_.stage();
  auto log = Logger("agent");
  if (absl::Status st = LoadSecrets({}); !st.ok()) return Finish(v1::STAGE_FAILED, -1, std::string(st.message()));
  auto image = ResolveImage();
  if (!image.ok()) {
    return Finish(absl::IsCancelled(image.status()) ? v1::STAGE_CANCELLED : v1::STAGE_FAILED, -1,
                  std::string(image.status().message()));
  }
  image_ = *image;
  if (absl::Status st = CheckPinnedImage(); !st.ok()) return Finish(v1::STAGE_FAILED, -1, std::string(st.message()));
  auto sandbox = Sandbox();
  if (!sandbox.ok()) return Finish(v1::STAGE_FAILED, -1, std::string(sandbox.status().message()));
  if (absl::Status st = StartServices(*sandbox); !st.ok()) {
    StopServices();
    return Finish(absl::IsCancelled(st) ? v1::STAGE_CANCELLED : v1::STAGE_FAILED, -1, std::string(st.message()));
  }
  auto container = CreateContainer(*sandbox);
  if (!container.ok()) {
    StopServices();
    return Finish(v1::STAGE_FAILED, -1, std::string(container.status().message()));
  }
  {
    absl::MutexLock lock(&mu_);
    container_ = *container;
  }
  // From here on the container exists and must be removed whatever happens.
  auto remove = [&] {
    StopServices();
    if (absl::Status st = deps_.docker->RemoveContainer(*container); !st.ok()) {
      log->warn("run={} stage={} attempt={} cannot remove container {}: {}", ref.run_id(), ref.stage(),
                ref.attempt(), *container, st.ToString());
    }
  };
  if (absl::Status st = ShipSource(*container); !st.ok()) {
    remove();
    return Finish(v1::STAGE_FAILED, -1, absl::StrCat("cannot ship the source tree: ", st.message()));
  }
  if (absl::Status st = ShipInputs(*container); !st.ok()) {
    remove();
    return Finish(v1::STAGE_FAILED, -1, std::string(st.message()));
  }
  if (CancelRequested()) {
    remove();
    return Finish(v1::STAGE_CANCELLED, -1, "cancelled before start");
  }
  // The output is attached before the container starts, so nothing is missed, and
  // comes straight from the container (following the engine's log files costs the
  // engine more CPU than most stages).
  absl::Notification attached;
  absl::Status streamed;
  std::thread reader([&] {
    streamed = deps_.docker->AttachOutput(*container, [&] { attached.Notify(); },
                                          [this](OutputStream stream, std::string_view data) { pump_->Write(stream, data); });
    if (!attached.HasBeenNotified()) attached.Notify();
  });
  if (!attached.WaitForNotificationWithTimeout(absl::Seconds(60))) {
    remove();  // which ends the attachment
    reader.join();
    return Finish(v1::STAGE_FAILED, -1, "the engine did not attach to the container's output within 60s");
  }
  if (absl::Status st = deps_.docker->StartContainer(*container); !st.ok()) {
    remove();  // which ends the attachment
    reader.join();
    return Finish(v1::STAGE_FAILED, -1, absl::StrCat("cannot start the container: ", st.message()));
  }
  log->info("run={} stage={} attempt={} started container={}", ref.run_id(), ref.stage(), ref.attempt(),
            container->substr(0, 12));
  on_running();
  return Supervise(*container, [&] {
    reader.join();
    return streamed;
  });
}

v1::StageStatus StageExecutor::Adopt(const std::string& container) {
  {
    absl::MutexLock lock(&mu_);
    container_ = container;
  }
  const v1::StageRef& ref = assignment_.stage();
  Logger("agent")->info("run={} stage={} attempt={} re-adopted container={}", ref.run_id(), ref.stage(),
                        ref.attempt(), container.substr(0, 12));
  if (assignment_.spec().secrets_size() > 0) {
    // The spool never held the values: the container's environment has them.
    auto env = deps_.docker->ContainerEnv(container);
    absl::Status st = env.ok() ? LoadSecrets(*env) : env.status();
    if (!st.ok()) {
      // Its output cannot be masked, so none of it is read.
      (void)deps_.docker->RemoveContainer(container);
      return Finish(v1::STAGE_FAILED, -1,
                    absl::StrCat("the agent restarted and cannot mask this stage's secrets: ", st.message()));
    }
  }
  if (assignment_.spec().services_size() > 0) {
    MakePod();
    if (absl::Status st = pod_->Adopt(); !st.ok()) {
      pump_->WriteSystemLine(absl::StrCat("cannot find this stage's services again: ", st.message()));
    }
  }
  pump_->WriteSystemLine("the agent restarted and took this container over again");
  // Docker replays a container's output from its start; skip what was delivered.
  int64_t skip[3] = {0, pump_->Covered(OutputStream::kStdout), pump_->Covered(OutputStream::kStderr)};
  return Supervise(container, [&] {
    return deps_.docker->FollowLogs(container, [&](OutputStream stream, std::string_view data) {
      int64_t& left = skip[static_cast<int>(stream)];
      if (left > 0) {
        const size_t drop = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(data.size())));
        left -= static_cast<int64_t>(drop);
        data.remove_prefix(drop);
      }
      if (!data.empty()) pump_->Write(stream, data);
    });
  });
}

v1::StageStatus StageExecutor::Supervise(const std::string& container, const std::function<absl::Status()>& follow) {
  const v1::StageRef& ref = assignment_.stage();
  auto log = Logger("agent");
  // `timeout:` is the agent's timer's to enforce (no thread of its own per stage).
  ChoreTimer::Id timeout = 0;
  if (assignment_.spec().timeout_ms() > 0) {
    timeout = deps_.timer->At(absl::Now() + absl::Milliseconds(assignment_.spec().timeout_ms()), [this] {
      std::string id;
      {
        absl::MutexLock lock(&mu_);
        if (exited_) return;
        timed_out_ = true;
        id = container_;
      }
      (void)deps_.docker->KillContainer(id);
    });
  }
  absl::Status followed = follow();
  auto exit_code = deps_.docker->WaitContainer(container);
  {
    absl::MutexLock lock(&mu_);
    exited_ = true;
  }
  if (timeout != 0) deps_.timer->Cancel(timeout);
  bool timed_out;
  {
    absl::MutexLock lock(&mu_);
    timed_out = timed_out_;
  }
  const std::string services_note = pod_ ? pod_->ExitNote() : "";
  StopServices();

  // Test reports matter most when the command failed: collected whatever it did.
  if (exit_code.ok() && assignment_.spec().junit_reports_size() > 0 && !CancelRequested()) PublishReports(container);

  v1::StageStatus status;
  if (!exit_code.ok()) {
    status = Finish(v1::STAGE_FAILED, -1, absl::StrCat("lost track of the container: ", exit_code.status().message()));
  } else if (!followed.ok()) {
    status = Finish(v1::STAGE_FAILED, static_cast<int>(*exit_code),
                    absl::StrCat("log stream broke: ", followed.message()));
  } else if (timed_out) {
    status = Finish(v1::STAGE_TIMED_OUT, static_cast<int>(*exit_code),
                    absl::StrCat("timed out after ", absl::FormatDuration(absl::Milliseconds(assignment_.spec().timeout_ms()))));
  } else if (*exit_code != 0 && deps_.docker->OomKilled(container).value_or(false)) {
    status = Finish(v1::STAGE_FAILED, static_cast<int>(*exit_code),
                    absl::StrCat("out of memory: killed at its memory limit",
                                 memory_limit_ > 0 ? " of " + FormatBytes(memory_limit_) : std::string()));
  } else if (*exit_code != 0) {
    status = Finish(v1::STAGE_FAILED, static_cast<int>(*exit_code),
                    absl::StrCat("exit code ", *exit_code, services_note.empty() ? "" : " (" + services_note + ")"));
  } else if (absl::Status published = Publish(container, status); !published.ok()) {
    status = Finish(v1::STAGE_FAILED, 0, std::string(published.message()));
  } else {
    google::protobuf::RepeatedPtrField<v1::CacheDigests> caches = status.caches();
    status = Finish(v1::STAGE_SUCCEEDED, 0, "");
    *status.mutable_caches() = std::move(caches);
  }
  if (status.state() != v1::STAGE_SUCCEEDED) {
    for (const v1::CacheMount& mount : assignment_.spec().caches()) {
      if (!mount.read_only()) deps_.caches->Forget(CacheVolumeName(ref.run_id(), mount.name(), deps_.agent_name));
    }
  }
  if (absl::Status st = deps_.docker->RemoveContainer(container); !st.ok()) {
    log->warn("run={} stage={} attempt={} cannot remove container {}: {}", ref.run_id(), ref.stage(), ref.attempt(),
              container, st.ToString());
  }
  log->info("run={} stage={} attempt={} {} exit_code={}", ref.run_id(), ref.stage(), ref.attempt(),
            v1::StageState_Name(status.state()), status.exit_code());
  return status;
}

absl::Status StageExecutor::Publish(const std::string& container, v1::StageStatus& status) {
  if (CancelRequested()) return absl::CancelledError("cancelled");
  const v1::StageRef& ref = assignment_.stage();
  const std::string scratch = absl::StrCat(deps_.scratch_dir, "/", ref.run_id(), "-", ref.stage(), "-", ref.attempt());
  if (assignment_.spec().artifacts_size() > 0) {
    auto uploaded = deps_.artifacts->UploadAll(ref, container, assignment_.spec().artifacts());
    if (!uploaded.ok()) return uploaded.status();
    for (const UploadedArtifact& artifact : *uploaded) {
      pump_->WriteSystemLine(absl::StrCat("artifact ", artifact.path, " (", artifact.size, " bytes, sha256 ",
                                          artifact.sha256, ") published"));
    }
  }
  // The promise: what a later stage starts from is exactly what this one left.
  for (const v1::CacheMount& mount : assignment_.spec().caches()) {
    std::string consumed;
    for (const v1::CacheDigests& given : assignment_.cache_starts()) {
      if (given.name() == mount.name()) consumed = given.consumed();
    }
    std::string note;
    auto taken = deps_.caches->Take(container, mount.path(), CacheVolumeName(ref.run_id(), mount.name(), deps_.agent_name),
                                    consumed, scratch, &note);
    if (!taken.ok()) {
      return absl::Status(taken.status().code(),
                          absl::StrCat("cannot snapshot cache ", mount.name(), ": ", taken.status().message()));
    }
    v1::CacheDigests* digests = status.add_caches();
    *digests = *taken;
    digests->set_name(mount.name());
    digests->set_consumed(consumed);
    pump_->WriteSystemLine(absl::StrCat("cache ", mount.name(), ": ", note,
                                        mount.read_only() && digests->produced() == digests->consumed()
                                            ? "; unchanged, as a read-only mount must be"
                                            : ""));
  }
  return absl::OkStatus();
}

void StageExecutor::PublishReports(const std::string& container) {
  const v1::StageRef& ref = assignment_.stage();
  google::protobuf::RepeatedPtrField<v1::ArtifactSpec> specs;
  for (const std::string& pattern : assignment_.spec().junit_reports()) {
    v1::ArtifactSpec* spec = specs.Add();
    spec->set_pattern(pattern);
    spec->set_optional(true);
  }
  auto uploaded = deps_.artifacts->UploadAll(ref, container, specs, /*reports=*/true);
  if (!uploaded.ok()) {
    pump_->WriteSystemLine(absl::StrCat("test reports not published: ", uploaded.status().message()));
    return;
  }
  for (const UploadedArtifact& report : *uploaded) {
    pump_->WriteSystemLine(absl::StrCat("test report ", report.path, " (", report.size, " bytes) published"));
  }
}

}  // namespace dockyard
