#pragma once
// The `fpga` device: the SAT kernel on a VCU1525/U200 through XRT's native API (xrt::device,
// xrt::xclbin, xrt::kernel, xrt::bo, xrt::run). The `fpga` backend is the shared
// AcceleratorBackend over it (sat/accelerator.hpp); nothing of the host logic lives here.
// Design and board set-up: docs/fpga.md.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sat/device.hpp"

namespace sat::driver {

// What a kernel run's wait ended in.
enum class WaitOutcome { completed, timed_out };

struct XrtOptions {
  std::string device = "0";   // an index ("0") or a PCIe BDF ("0000:65:00.1")
  std::string xclbin;         // the SAT xclbin (docs/fpga.md); required
  // Replaces xrt::run::wait where set: tests inject a run that never completes, which XRT's no-op
  // shim cannot produce (its wait returns at once). Called with the run's timeout (zero: none).
  std::function<WaitOutcome(std::chrono::milliseconds)> wait_override;
};

// The options of the `fpga` backend: SAT_XCLBIN (the xclbin; `--xclbin` of the CLI sets it) and
// SAT_FPGA_DEVICE (index or BDF, default 0).
XrtOptions xrt_options_from_env();

// Opens the card, checks the xclbin (sat_top, its argument list, this build's interface version,
// docs/fpga.md "What the driver checks") before loading it, loads it and opens the kernel. Every
// failure is a sat::Error naming what failed and what to check; nothing stays open after one.
std::unique_ptr<Device> open_xrt_device(const XrtOptions& options);

// Where the driver placed one kernel argument: its register offset, and for a pointer the memory
// bank (XRT group id) its buffers are allocated in with that bank's tag.
struct ArgPlacement {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
  int bank = -1;          // -1: a register value
  std::string bank_tag;   // "DDR[1]", ...
  uint64_t bank_bytes = 0;
};

// Introspection of an open `fpga` device, for tests and `sat devices`.
class XrtDevice : public Device {
 public:
  virtual const std::vector<ArgPlacement>& placement() const = 0;   // in sat_top's argument order
  virtual std::string xclbin_uuid() const = 0;
};

// Introspection of an `fpga` DeviceMemory: the buffer of each channel.
class XrtMemory : public DeviceMemory {
 public:
  virtual int bank(int channel) const = 0;               // the group id its buffer was allocated in
  virtual uint64_t buffer_bytes(int channel) const = 0;  // xrt::bo::size (at least bytes(channel))
  virtual uint64_t device_address(int channel) const = 0;
};

// XRT objects the driver holds right now, by kind: after any error, and after every device, memory
// and stream is destroyed, all are zero (the tests check it).
struct LiveHandles {
  int devices = 0, kernels = 0, buffers = 0, runs = 0;
  int total() const { return devices + kernels + buffers + runs; }
};
LiveHandles live_xrt_handles();

// What XRT sees, for `sat devices`.
struct XrtCard {
  int index = 0;
  std::string name, bdf, shell;        // "unknown (...)" where XRT does not report one
  std::vector<std::string> banks;      // "DDR[0] 16384 MiB", from the loaded xclbin's memory topology
  std::string note;                    // the no-op shim, ...
};
struct XrtScan {
  std::vector<XrtCard> cards;
  std::string why_none;                // when cards is empty: why, and what to do
  std::string environment;             // XILINX_XRT and XCL_EMULATION_MODE as seen
};
XrtScan scan_xrt_devices();

}  // namespace sat::driver
