#include "xrt_support.hpp"

#include <cstdlib>

namespace sat::driver::detail {

std::atomic<int>& live_count(Kind k) {
  static std::atomic<int> counts[4];
  return counts[static_cast<int>(k)];
}

std::string xrt_environment() {
  const char* x = std::getenv("XILINX_XRT");
  const char* e = std::getenv("XCL_EMULATION_MODE");
  return std::string("XILINX_XRT=") + (x ? x : "(unset)") + ", XCL_EMULATION_MODE=" + (e ? e : "(unset)");
}

bool noop_shim() {
  const char* e = std::getenv("XCL_EMULATION_MODE");
  return e && std::string(e) == "noop";
}

std::string open_advice() {
  if (!std::getenv("XILINX_XRT")) {
    return "XILINX_XRT is not set: on a machine with a card run 'source /opt/xilinx/xrt/setup.sh'; without a board, "
           "XCL_EMULATION_MODE=noop with XILINX_XRT naming a directory whose lib/ holds libxrt_noop.so.2 runs "
           "XRT's no-op shim (docs/fpga.md)";
  }
  if (noop_shim()) {
    return "XRT's no-op shim is selected (XCL_EMULATION_MODE=noop): XILINX_XRT must name a directory whose lib/ "
           "holds libxrt_noop.so.2; the shim knows no PCIe BDF, use an index (" + xrt_environment() + ")";
  }
  return "is the card in this machine with the xocl and xclmgmt drivers loaded? 'xbutil examine' lists what XRT "
         "sees, 'sat devices' too (" + xrt_environment() + ")";
}

}  // namespace sat::driver::detail

namespace sat::driver {

LiveHandles live_xrt_handles() {
  using detail::Kind;
  using detail::live_count;
  return {live_count(Kind::device).load(), live_count(Kind::kernel).load(), live_count(Kind::buffer).load(),
          live_count(Kind::run).load()};
}

}  // namespace sat::driver
