// The agent's end of one Session stream to the controller (callback API): sends
// `register` first, then whatever is queued; hands every controller message to the
// handler. One instance per connection; the Agent makes a new one to reconnect.
#pragma once

#include <deque>
#include <functional>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "dockyard/v1/agent.grpc.pb.h"

namespace dockyard {

class ControllerSession final : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  // Called in gRPC reactions: must not block.
  using OnMessage = std::function<void(const v1::ControllerMessage&)>;

  ControllerSession(v1::AgentService::Stub* stub, OnMessage on_message);

  // Starts the call with `registration` as the first message.
  void Start(v1::RegisterAgent registration);
  // Queues a message. Thread-safe; dropped once the stream has ended.
  void Send(v1::AgentMessage message);
  // Ends the stream from our side (shutdown).
  void Cancel() { context_.TryCancel(); }
  // Blocks until the stream is over; returns how it ended.
  grpc::Status Wait();
  bool ended() { return done_.HasBeenNotified(); }

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  grpc::ClientContext context_;
  const OnMessage on_message_;
  v1::ControllerMessage incoming_;

  absl::Mutex mu_;
  std::deque<v1::AgentMessage> outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_;
  absl::Notification done_;
};

}  // namespace dockyard
