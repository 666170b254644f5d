// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Debian's Abseil (20220623) ships no status macros.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DOCKYARD_CONCAT_INNER_(a, b) a##b
#define DOCKYARD_CONCAT_(a, b) DOCKYARD_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    if (absl::Status _st = (expr); !_st.ok()) {      \
      return _st;                                    \
    }                                                \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  DOCKYARD_ASSIGN_OR_RETURN_IMPL_(DOCKYARD_CONCAT_(_statusor_, __LINE__), lhs, expr)

#define DOCKYARD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) {                                      \
    return std::move(statusor).status();                     \
  }                                                          \
  lhs = std::move(statusor).value()
