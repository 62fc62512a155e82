#pragma once
// Whether this build holds a backend (sat info's "available"), for the tests whose expectation
// depends on it: `fpga` is built where XRT is installed, and refused by name where it is not.
#include <string>

#include "sat/backend.hpp"

namespace sat::test {

inline bool backend_built(const std::string& name) {
  for (const auto& [n, status] : backend_status()) {
    if (n == name) return status.rfind("available", 0) == 0;
  }
  return false;
}

// What opening `fpga` without an xclbin says: the missing xclbin where the driver is built, the
// missing driver where it is not.
inline const char* fpga_unopened_error() {
  return backend_built("fpga") ? "device 'fpga' needs the SAT xclbin" : "backend 'fpga' is not available";
}

}  // namespace sat::test
