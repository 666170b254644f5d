#include "agent/controller_session.h"

namespace dockyard {

ControllerSession::ControllerSession(v1::AgentService::Stub* stub, OnMessage on_message)
    : on_message_(std::move(on_message)) {
  stub->async()->Session(&context_, this);
}

void ControllerSession::Start(v1::RegisterAgent registration) {
  v1::AgentMessage first;
  *first.mutable_register_() = std::move(registration);
  Send(std::move(first));
  StartRead(&incoming_);
  // Keeps the call open while nothing else is pending.
  AddHold();
  StartCall();
}

void ControllerSession::Send(v1::AgentMessage message) {
  const v1::AgentMessage* next = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (broken_) return;
    outgoing_.push_back(std::move(message));
    if (writing_) return;
    writing_ = true;
    next = &outgoing_.front();
  }
  // Outside the lock: gRPC may run OnWriteDone inline on this thread.
  StartWrite(next);
}

void ControllerSession::OnWriteDone(bool ok) {
  const v1::AgentMessage* next = nullptr;
  {
    absl::MutexLock lock(&mu_);
    outgoing_.pop_front();
    if (!ok) broken_ = true;
    if (!ok || outgoing_.empty()) {
      writing_ = false;
      return;
    }
    next = &outgoing_.front();
  }
  StartWrite(next);
}

void ControllerSession::OnReadDone(bool ok) {
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    RemoveHold();
    return;
  }
  on_message_(incoming_);
  StartRead(&incoming_);
}

void ControllerSession::OnDone(const grpc::Status& status) {
  status_ = status;
  done_.Notify();
}

grpc::Status ControllerSession::Wait() {
  done_.WaitForNotification();
  return status_;
}

}  // namespace dockyard
