#pragma once
// Reads an xclbin and checks it against the contract (arch/include/sat/arch/interface.hpp) before
// anything touches the card: a well-formed axlf, a kernel sat_top whose arguments are kTopArgs in
// order (pointers where the contract has pointers, registers of the contract's widths), and this
// build's interface version in its KEYVALUE_METADATA.
#include <xrt/xrt_device.h>
#include <experimental/xrt_xclbin.h>

#include <string>
#include <vector>

#include "sat_driver/xrt_device.hpp"

namespace sat::driver::detail {

struct CheckedXclbin {
  xrt::xclbin xclbin;
  std::vector<ArgPlacement> args;   // in kTopArgs order; bank from the xclbin's connectivity
  std::string platform;             // the platform (shell) it was linked for
};

// Throws sat::Error naming the file and what is wrong with it.
CheckedXclbin read_sat_xclbin(const std::string& path);

}  // namespace sat::driver::detail
