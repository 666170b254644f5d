// The one place absl::Status and grpc::Status are converted into each other.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace dockyard {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace dockyard
