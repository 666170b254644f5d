// The controller's one writer of run, agent and artifact records: the core decides
// under its mutex and hands over what changed together with the messages those
// changes promise; this thread saves them (everything queued, one transaction) and
// only then lets the messages go, in the order they were decided. So no agent hears
// what a restart would forget, and no gRPC reaction waits for the disk.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "dockyard/v1/agent.pb.h"
#include "dockyard/v1/run.pb.h"
#include "dockyard/v1/state.pb.h"

namespace dockyard {

// A message for one session of an agent (a reconnected agent's new session never
// gets what was decided for the old one).
struct Delivery {
  std::string agent;
  uint64_t session = 0;
  v1::ControllerMessage message;
};

// What changed, to save in one go.
struct StateChanges {
  std::vector<v1::RunRecord> runs;
  std::vector<v1::StageRecord> stages;  // of runs whose record did not change
  std::vector<v1::AgentRecord> agents;
  std::vector<v1::Artifact> artifacts;
  // Run once these changes are saved and their messages delivered (on the persister's
  // thread, with no lock held): wakes those who watch the changed runs.
  std::vector<std::function<void()>> after_save;
  bool empty() const { return runs.empty() && stages.empty() && agents.empty() && artifacts.empty(); }
};

class StatePersister {
 public:
  using Save = std::function<absl::Status(const StateChanges&)>;
  using Deliver = std::function<void(std::vector<Delivery>)>;

  // `save` writes to the state store; `deliver` hands saved messages to their
  // sessions (called on the persister's thread, never with its lock held).
  StatePersister(Save save, Deliver deliver);
  // Saves and delivers what is queued, then stops.
  ~StatePersister();
  StatePersister(const StatePersister&) = delete;
  StatePersister& operator=(const StatePersister&) = delete;

  // Queues changes and the messages that wait for them. Never blocks on the disk.
  void Enqueue(StateChanges changes, std::vector<Delivery> deliveries);
  // Blocks until everything enqueued before the call is saved (or its save failed)
  // and delivered: for answers that promise state to a client.
  void Sync();

 private:
  void Loop();

  const Save save_;
  const Deliver deliver_;
  absl::Mutex mu_;
  // Records by key, latest wins: many changes of one run are saved once.
  std::map<std::string, v1::RunRecord> runs_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int>, v1::StageRecord> stages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::AgentRecord> agents_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Artifact> artifacts_ ABSL_GUARDED_BY(mu_);
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> after_save_ ABSL_GUARDED_BY(mu_);
  uint64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;  // batches handed over
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;      // batches saved and delivered
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace dockyard
