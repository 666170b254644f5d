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
  const absl::Time give_up = absl::Now() + policy_.patience;
  absl::Duration backoff = policy_.first_backoff;
  std::minstd_rand jitter(std::random_device{}());
  for (int tries = 1;; ++tries) {
    grpc::Status status;
    {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + policy_.per_try_deadline));
      if (setup_) setup_(context);
      status = call(context);
    }
    if (status.ok() || !Retryable(status.error_code()) || tries >= policy_.max_tries) {
      return FromGrpcStatus(status);
    }
    // Full jitter in [backoff/2, backoff]: many agents that lost the controller
    // together do not all come back in the same millisecond.
    const double factor = 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(jitter);
    const absl::Duration pause = backoff * factor;
    if (absl::Now() + pause > give_up) return FromGrpcStatus(status);
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(pause));
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
}

}  // namespace dockyard
