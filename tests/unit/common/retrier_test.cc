#include "common/retrier.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace dockyard {
namespace {

RetryPolicy Fast() {
  RetryPolicy policy;
  policy.first_backoff = absl::Milliseconds(1);
  policy.max_backoff = absl::Milliseconds(2);
  policy.max_tries = 5;
  return policy;
}

TEST(Retrier, RetriesUnavailableUntilTheCallSucceeds) {
  int tries = 0;
  absl::Status st = Retrier(Fast()).Run([&](grpc::ClientContext&) {
    return ++tries < 3 ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "down") : grpc::Status::OK;
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(tries, 3);
}

TEST(Retrier, OnlyRetryableCodesAreRetried) {
  for (grpc::StatusCode code : {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DEADLINE_EXCEEDED,
                                grpc::StatusCode::RESOURCE_EXHAUSTED}) {
    int tries = 0;
    (void)Retrier(Fast()).Run([&](grpc::ClientContext&) {
      ++tries;
      return grpc::Status(code, "again");
    });
    EXPECT_EQ(tries, 5) << code;
  }
  for (grpc::StatusCode code : {grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::UNAUTHENTICATED,
                                grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::DATA_LOSS,
                                grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::ABORTED}) {
    int tries = 0;
    absl::Status st = Retrier(Fast()).Run([&](grpc::ClientContext&) {
      ++tries;
      return grpc::Status(code, "final");
    });
    EXPECT_EQ(tries, 1) << code;
    EXPECT_EQ(st.message(), "final");
  }
}

TEST(Retrier, EveryTryGetsAFreshContextWithAFreshDeadline) {
  RetryPolicy policy = Fast();
  policy.per_try_deadline = absl::Seconds(30);
  std::vector<grpc::ClientContext*> contexts;
  std::vector<std::chrono::system_clock::time_point> deadlines;
  int setups = 0;
  (void)Retrier(policy, [&](grpc::ClientContext&) { ++setups; }).Run([&](grpc::ClientContext& context) {
    contexts.push_back(&context);
    deadlines.push_back(context.deadline());
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  });
  ASSERT_EQ(deadlines.size(), 5u);
  EXPECT_EQ(setups, 5);
  for (size_t i = 1; i < deadlines.size(); ++i) EXPECT_GE(deadlines[i], deadlines[i - 1]);
  EXPECT_GT(deadlines.back(), std::chrono::system_clock::now() + std::chrono::seconds(25));
}

TEST(Retrier, GivesUpOncePatienceRunsOut) {
  RetryPolicy policy;
  policy.max_tries = 1000;
  policy.first_backoff = absl::Milliseconds(20);
  policy.max_backoff = absl::Milliseconds(20);
  policy.patience = absl::Milliseconds(100);
  int tries = 0;
  const absl::Time start = absl::Now();
  absl::Status st = Retrier(policy).Run([&](grpc::ClientContext&) {
    ++tries;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(tries, 20);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace dockyard
