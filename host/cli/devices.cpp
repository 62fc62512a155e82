// sat devices: the cards XRT sees (name, PCIe BDF, shell, and with --xclbin the memory banks the
// fpga device places its buffers in), or why it sees none. Where this build has no XRT driver it
// says so; the listing itself is the driver's (driver/src/device_scan.cpp).
#include <cstdio>
#include <memory>

#include "args.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/device.hpp"

#if __has_include("sat_driver/xrt_device.hpp")
#include "sat_driver/xrt_device.hpp"
#define SAT_CLI_HAS_XRT 1
#endif

namespace sat::cli {

int cmd_devices(const std::vector<std::string>& argv) {
  CommandSpec spec("devices", "[--xclbin FILE [--device ID]]",
                   "Lists the FPGA cards XRT sees on this machine: index, name, PCIe BDF and shell; with --xclbin\n"
                   "it loads FILE on the card (--device, default 0) and lists the memory bank each kernel\n"
                   "argument's buffers go to. When XRT sees no card it says why.");
  spec.value("xclbin", "FILE", "a SAT xclbin to load and show the banks of (docs/fpga.md)")
      .value("device", "ID", "the card for --xclbin: an index or a PCIe BDF (default 0)")
      .note("Exit status 0 when XRT sees a card, 1 when it sees none. docs/fpga.md covers XRT and the board.");
  const std::optional<Args> parsed = spec.parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  if (args.has("device") && !args.has("xclbin")) args.fail("--device needs --xclbin FILE (the listing shows every card)");
#ifndef SAT_CLI_HAS_XRT
  for (const auto& [name, status] : backend_status()) {
    if (name == "fpga") std::printf("fpga: %s\n", status.c_str());
  }
  args.input_error("this build has no XRT driver, so it cannot list FPGA cards (sat info says what fpga needs)");
#else
  const driver::XrtScan scan = driver::scan_xrt_devices();
  std::printf("XRT: %s\n", scan.environment.c_str());
  if (scan.cards.empty()) {
    std::printf("no FPGA card: %s\n", scan.why_none.c_str());
    return kExitError;
  }
  for (const driver::XrtCard& c : scan.cards) {
    std::printf("card %d\n  name:  %s\n  bdf:   %s\n  shell: %s\n", c.index, c.name.c_str(), c.bdf.c_str(),
                c.shell.c_str());
    if (!c.note.empty()) std::printf("  note:  %s\n", c.note.c_str());
  }
  if (const auto xclbin = args.opt("xclbin")) {
    driver::XrtOptions o;
    o.xclbin = *xclbin;
    o.device = args.str("device", "0");
    const std::unique_ptr<Device> dev = driver::open_xrt_device(o);
    const auto& xd = dynamic_cast<const driver::XrtDevice&>(*dev);
    std::printf("xclbin %s loaded on card %s (uuid %s); sat_top's arguments:\n", xclbin->c_str(), o.device.c_str(),
                xd.xclbin_uuid().c_str());
    for (const driver::ArgPlacement& p : xd.placement()) {
      if (p.bank >= 0) {
        std::printf("  %-11s register 0x%03llx  bank %d %s, %llu MiB\n", p.name.c_str(),
                    static_cast<unsigned long long>(p.offset), p.bank, p.bank_tag.c_str(),
                    static_cast<unsigned long long>(p.bank_bytes >> 20));
      } else {
        std::printf("  %-11s register 0x%03llx  %llu bytes\n", p.name.c_str(), static_cast<unsigned long long>(p.offset),
                    static_cast<unsigned long long>(p.size));
      }
    }
  }
  return kExitOk;
#endif
}

}  // namespace sat::cli
