// The one retry helper for gRPC calls (as buildbox-common's GrpcRetrier): every try
// gets a fresh ClientContext with a fresh deadline, tries are separated by an
// exponential back-off with jitter, and only UNAVAILABLE, DEADLINE_EXCEEDED and
// RESOURCE_EXHAUSTED are retried — every other status is final at once. A call
// that made progress (offsets) keeps it between tries, so a retry resumes.
#pragma once

#include <functional>
#include <memory>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace dockyard {

struct RetryPolicy {
  // Give up after this many tries or once this much time has passed, whichever first.
  int max_tries = 8;
  absl::Duration patience = absl::Minutes(2);
  absl::Duration per_try_deadline = absl::Seconds(30);
  absl::Duration first_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
};

// For the agent's long transfers (artifacts, cache parts): a try may take `per_try`,
// and a broken one is tried again for up to ten minutes.
inline RetryPolicy TransferPolicy(absl::Duration per_try) {
  RetryPolicy policy;
  policy.per_try_deadline = per_try;
  policy.patience = absl::Minutes(10);
  return policy;
}

// Credentials and metadata every try's context carries (e.g. the CLI's token).
using ContextSetup = std::function<void(grpc::ClientContext&)>;

class Retrier {
 public:
  explicit Retrier(RetryPolicy policy = {}, ContextSetup setup = nullptr)
      : policy_(policy), setup_(std::move(setup)) {}

  // Runs `call` until it succeeds or fails for good; returns its last status.
  absl::Status Run(const std::function<grpc::Status(grpc::ClientContext&)>& call) const;
  // The same back-off for anything else (e.g. an HTTP request): `attempt` is tried
  // again while it returns UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED.
  absl::Status RunPlain(const std::function<absl::Status()>& attempt) const;

  // True for the codes worth another try.
  static bool Retryable(grpc::StatusCode code);

 private:
  // The loop both share: `attempt` returns its status and whether it may be retried.
  absl::Status Loop(const std::function<absl::Status(bool& retryable)>& attempt) const;

  RetryPolicy policy_;
  ContextSetup setup_;
};

}  // namespace dockyard
