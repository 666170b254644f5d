#include "common/retrier.h"

#include <random>
#include <thread>

#include "common/grpc_status.h"

namespace dockyard {

bool Retrier::Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

absl::Status Retrier::Run(const std::function<grpc::Status(grpc::ClientContext&)>& call) const {
  return Loop([&](bool& retryable) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + policy_.per_try_deadline));
    if (setup_) setup_(context);
    const grpc::Status status = call(context);
    retryable = Retryable(status.error_code());
    return FromGrpcStatus(status);
  });
}

absl::Status Retrier::RunPlain(const std::function<absl::Status()>& attempt) const {
  return Loop([&](bool& retryable) {
    absl::Status status = attempt();
    retryable = absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) || absl::IsResourceExhausted(status);
    return status;
  });
}

absl::Status Retrier::Loop(const std::function<absl::Status(bool& retryable)>& attempt) const {
  const absl::Time give_up = absl::Now() + policy_.patience;
  absl::Duration backoff = policy_.first_backoff;
  std::minstd_rand jitter(std::random_device{}());
  for (int tries = 1;; ++tries) {
    bool retryable = false;
    absl::Status status = attempt(retryable);
    if (status.ok() || !retryable || tries >= policy_.max_tries) return status;
    // Full jitter in [backoff/2, backoff]: many agents that lost the controller
    // together do not all come back in the same millisecond.
    const double factor = 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(jitter);
    const absl::Duration pause = backoff * factor;
    if (absl::Now() + pause > give_up) return status;
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(pause));
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
}

}  // namespace dockyard
