// Figure 5 of bench/run: the controller's scheduler under load, with no Docker in the
// way. A real controller process serves many lightweight agents that live in this
// process (one gRPC session each, enrolled and on TLS like real agents) and report
// every stage they are given as succeeded at once. The runs are chains (stage k needs
// stage k-1), so a stage is ready the moment its predecessor's success is sent, and
// ready -> assigned is measured on one clock: from that send to the next assignment's
// arrival. Prints one line of key=value figures for bench/run.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "dockyard/v1/agent.grpc.pb.h"
#include "dockyard/v1/run.grpc.pb.h"
#include "common/process_tuning.h"
#include "tests/support/test_credentials.h"

ABSL_FLAG(std::string, controller, "", "the controller's host:port");
ABSL_FLAG(std::string, data_dir, "", "the controller's data dir (its CA and admin token)");
ABSL_FLAG(int, controller_pid, 0, "the controller's pid, for its CPU time and peak RSS");
ABSL_FLAG(int, agents, 500, "connected agents");
ABSL_FLAG(int, runs, 200, "runs submitted at once");
ABSL_FLAG(int, stages, 100, "stages per run (a chain)");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(5), "the controller's heartbeat interval");
ABSL_FLAG(absl::Duration, patience, absl::Minutes(5), "give up when the runs take longer");

namespace dockyard {
namespace {

// Ready times of stages by "run/index", and the ready -> assigned delays seen.
class Ledger {
 public:
  void Ready(const std::string& run, int index) {
    absl::MutexLock lock(&mu_);
    ready_[absl::StrCat(run, "/", index)] = absl::Now();
  }
  void Assigned(const std::string& run, int index) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    ++assignments_;
    last_assignment_ = now;
    auto it = ready_.find(absl::StrCat(run, "/", index - 1));
    if (index > 0 && it != ready_.end()) {
      delays_ms_.push_back(absl::ToDoubleMilliseconds(now - it->second));
      ready_.erase(it);
    }
  }
  bool AwaitAssignments(int wanted, absl::Duration patience) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return assignments_ >= wanted; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), patience);
  }
  int assignments() {
    absl::MutexLock lock(&mu_);
    return assignments_;
  }
  absl::Time last_assignment() {
    absl::MutexLock lock(&mu_);
    return last_assignment_;
  }
  std::vector<double> delays_ms() {
    absl::MutexLock lock(&mu_);
    return delays_ms_;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> ready_ ABSL_GUARDED_BY(mu_);
  std::vector<double> delays_ms_ ABSL_GUARDED_BY(mu_);
  int assignments_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_assignment_ ABSL_GUARDED_BY(mu_);
};

// One agent session on the callback API: registers, answers every assignment with
// success, and heartbeats when asked. Writes go out one at a time, in order.
class BenchAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  BenchAgent(std::unique_ptr<v1::AgentService::Stub> stub, const std::string& name, Ledger* ledger)
      : stub_(std::move(stub)), ledger_(ledger) {
    stub_->async()->Session(&context_, this);
    v1::AgentMessage hello;
    hello.mutable_register_()->set_name(name);
    hello.mutable_register_()->set_slots(1);
    Queue(std::move(hello));
    StartRead(&incoming_);
    StartCall();
  }

  void Heartbeat() {
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    Queue(std::move(beat));
  }

  bool AwaitWelcome(absl::Duration patience) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&welcomed_), patience);
  }

  void Stop() {
    context_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (incoming_.has_welcome()) {
      absl::MutexLock lock(&mu_);
      welcomed_ = true;
    } else if (incoming_.has_assign()) {
      const v1::StageRef& ref = incoming_.assign().stage();
      int index = 0;
      (void)absl::SimpleAtoi(ref.stage().substr(1), &index);
      ledger_->Assigned(ref.run_id(), index);
      v1::AgentMessage success;
      *success.mutable_stage_status()->mutable_stage() = ref;
      success.mutable_stage_status()->set_state(v1::STAGE_SUCCEEDED);
      ledger_->Ready(ref.run_id(), index);
      Queue(std::move(success));
    }
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    pending_.erase(pending_.begin());
    if (ok && !pending_.empty()) StartWrite(&pending_.front());
  }

  void OnDone(const grpc::Status&) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

 private:
  void Queue(v1::AgentMessage message) {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(message));
    if (pending_.size() == 1) StartWrite(&pending_.front());
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  Ledger* ledger_;
  grpc::ClientContext context_;
  v1::ControllerMessage incoming_;
  absl::Mutex mu_;
  std::deque<v1::AgentMessage> pending_ ABSL_GUARDED_BY(mu_);  // front: being written
  bool welcomed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

v1::SubmitRunRequest Chain(int run, int stages) {
  v1::SubmitRunRequest request;
  request.mutable_pipeline()->set_name(absl::StrCat("chain-", run));
  for (int k = 0; k < stages; ++k) {
    v1::Stage* stage = request.mutable_pipeline()->add_stages();
    stage->set_name(absl::StrCat("s", k));
    stage->set_image("dockyard/busybox");
    stage->set_run("true");
    if (k > 0) stage->add_needs(absl::StrCat("s", k - 1));
  }
  return request;
}

// utime + stime of `pid` in seconds, and its peak RSS in MB.
std::pair<double, double> CpuAndPeakRss(int pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::vector<std::string> f(std::istream_iterator<std::string>(fields), {});
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double cpu = f.size() > 12 ? (std::stod(f[11]) + std::stod(f[12])) / ticks : 0;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  double peak_mb = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) peak_mb = std::stod(line.substr(6)) / 1024;
  }
  return {cpu, peak_mb};
}

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5)];
}

int Main() {
  const std::string address = absl::GetFlag(FLAGS_controller);
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const int runs = absl::GetFlag(FLAGS_runs), stages = absl::GetFlag(FLAGS_stages);
  Ledger ledger;
  std::vector<std::unique_ptr<BenchAgent>> agents;
  const std::string prefix = absl::StrCat("sched-", getpid(), "-");
  for (int i = 0; i < absl::GetFlag(FLAGS_agents); ++i) {
    const std::string name = absl::StrCat(prefix, i);
    auto channel = testing::SecureChannel(address, testing::EnrolAgent(address, data_dir, name));
    agents.push_back(std::make_unique<BenchAgent>(v1::AgentService::NewStub(channel), name, &ledger));
  }
  for (auto& agent : agents) {
    if (!agent->AwaitWelcome(absl::Seconds(30))) {
      std::fprintf(stderr, "scheduler_bench: an agent was not welcomed\n");
      return 1;
    }
  }
  std::atomic<bool> stopping{false};
  std::thread heartbeats([&] {
    while (!stopping) {
      for (auto& agent : agents) agent->Heartbeat();
      for (absl::Duration slept; slept < absl::GetFlag(FLAGS_heartbeat_interval) && !stopping;
           slept += absl::Milliseconds(100)) {
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
  });

  const auto [cpu_before, peak_unused] = CpuAndPeakRss(absl::GetFlag(FLAGS_controller_pid));
  (void)peak_unused;
  auto runs_stub = v1::RunService::NewStub(testing::SecureChannel(address, testing::AdminCredentials(data_dir)));
  const absl::Time start = absl::Now();
  std::vector<std::thread> submitters;
  constexpr int kSubmitters = 8;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&, t] {
      for (int r = t; r < runs; r += kSubmitters) {
        grpc::ClientContext context;
        v1::SubmitRunResponse response;
        grpc::Status st = runs_stub->SubmitRun(&context, Chain(r, stages), &response);
        if (!st.ok()) std::fprintf(stderr, "scheduler_bench: submit: %s\n", st.error_message().c_str());
      }
    });
  }
  for (std::thread& t : submitters) t.join();
  const bool all = ledger.AwaitAssignments(runs * stages, absl::GetFlag(FLAGS_patience));
  const absl::Duration took = ledger.last_assignment() - start;
  const auto [cpu_after, peak_mb] = CpuAndPeakRss(absl::GetFlag(FLAGS_controller_pid));
  stopping = true;
  heartbeats.join();
  for (auto& agent : agents) agent->Stop();
  if (!all) {
    std::fprintf(stderr, "scheduler_bench: only %d of %d stages were assigned\n", ledger.assignments(),
                 runs * stages);
    return 1;
  }
  const std::vector<double> delays = ledger.delays_ms();
  std::printf("%s\n", absl::StrFormat("assignments=%d seconds=%.2f assignments_per_s=%.0f ready_to_assigned_p50_ms=%.2f "
                                      "ready_to_assigned_p99_ms=%.2f controller_peak_rss_mb=%.1f controller_cpu_s=%.2f",
                                      ledger.assignments(), absl::ToDoubleSeconds(took),
                                      ledger.assignments() / absl::ToDoubleSeconds(took), Quantile(delays, 0.5),
                                      Quantile(delays, 0.99), peak_mb, cpu_after - cpu_before)
                          .c_str());
  return 0;
}

}  // namespace
}  // namespace dockyard

int main(int argc, char** argv) {
  dockyard::TuneProcess();  // as a real agent does
  absl::ParseCommandLine(argc, argv);
  return dockyard::Main();
}
