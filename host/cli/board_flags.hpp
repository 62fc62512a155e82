#pragma once
// --xclbin and --device, the flags of the commands that open a backend by name (train, eval,
// op gemm, replay): declared once here. They configure the `fpga` backend through its settings
// SAT_XCLBIN and SAT_FPGA_DEVICE (docs/fpga.md), the one way every caller (the CLI, the C++ API,
// the Python module) reaches it, since a backend is opened by name alone.
#include <stdlib.h>

#include <string>

#include "args.hpp"

namespace sat::cli {

inline void add_board_flags(CommandSpec& c) {
  c.value("xclbin", "FILE", "the SAT xclbin the fpga backend loads (default $SAT_XCLBIN; docs/fpga.md)")
      .value("device", "ID", "the card the fpga backend opens: an index or a PCIe BDF (default $SAT_FPGA_DEVICE, "
                             "else 0; `sat devices` lists them)");
}

// The --backend given (or `fallback`), with --xclbin and --device handed to the fpga backend; they
// are refused with any other backend, which would ignore them.
inline std::string backend_flag(const Args& args, const std::string& fallback) {
  const std::string backend = args.str("backend", fallback);
  for (const char* f : {"xclbin", "device"}) {
    if (args.has(f) && backend != "fpga") {
      args.fail(std::string("--") + f + " applies to --backend fpga only (the backend is '" + backend + "')");
    }
  }
  if (const auto x = args.opt("xclbin")) {
    if (x->empty()) args.fail("--xclbin: the path is empty");
    ::setenv("SAT_XCLBIN", x->c_str(), 1);
  }
  if (const auto d = args.opt("device")) {
    if (d->empty()) args.fail("--device: the card is empty (an index such as 0, or a PCIe BDF)");
    ::setenv("SAT_FPGA_DEVICE", d->c_str(), 1);
  }
  return backend;
}

}  // namespace sat::cli
