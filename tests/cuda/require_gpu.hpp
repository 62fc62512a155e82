#pragma once
// The CUDA tests' skip rule: where no GPU can be used (CI, the development machine), a GPU test
// skips and says why, in the words of the backend's own error.
#include <gtest/gtest.h>

#include <string>

#include "sat/backend.hpp"
#include "sat/error.hpp"

namespace sat::test {

// The reason no GPU can be used, or "" when one can.
inline const std::string& gpu_missing() {
  static const std::string why = [] {
    try {
      open_backend("cuda");
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  }();
  return why;
}

}  // namespace sat::test

#define SAT_REQUIRE_GPU()                                                                 \
  do {                                                                                    \
    const std::string& sat_why_ = ::sat::test::gpu_missing();                             \
    if (!sat_why_.empty()) GTEST_SKIP() << "no usable GPU, skipped: " << sat_why_;        \
  } while (0)
