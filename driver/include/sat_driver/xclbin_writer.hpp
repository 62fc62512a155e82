#pragma once
// A metadata-only xclbin of the SAT kernel: the sections XRT reads to open a kernel and place its
// buffers (MEM_TOPOLOGY, IP_LAYOUT, CONNECTIVITY, EMBEDDED_METADATA) and the interface version
// (KEYVALUE_METADATA), but no bitstream. It loads under XRT's no-op shim (XCL_EMULATION_MODE=noop),
// which is how the driver is tested without a board, and it shows what the `fpga` device expects of
// a real xclbin. A board needs the xclbin that `v++ -l` builds (docs/fpga-build.md).
// The argument list comes from arch/include/sat/arch/interface.hpp; nothing here re-declares it.
#include <cstdint>
#include <string>
#include <vector>

namespace sat::driver {

// The key of the KEYVALUE_METADATA entry that carries arch::kInterfaceVersion ("0x%08x"). The
// bitstream flow stamps it after `v++ -l` (hls/cmake/Bitstream.cmake); the driver refuses an
// xclbin without it or with another value.
inline constexpr const char* kInterfaceVersionKey = "sat_interface_version";

struct XclbinArg {
  std::string name;
  bool global = false;      // a pointer (m_axi, in a memory bank) rather than a register value
  uint64_t offset = 0;      // in the kernel's control register space
  uint64_t size = 0;        // bytes in that space
  std::string host_type;    // "void*", "unsigned int", ...
  std::string port;         // M_AXI_<BUNDLE> or S_AXI_CONTROL
  int bank = -1;            // memory bank index a global argument is connected to
};

struct XclbinSpec {
  std::string kernel;                 // the kernel's name (arch::kTopName)
  std::string instance;               // its compute unit ("sat_top_1")
  std::vector<XclbinArg> args;
  std::vector<uint64_t> bank_bytes;   // one DDR bank per entry, tags DDR[0], DDR[1], ...
  std::string interface_version;      // the KEYVALUE_METADATA value; empty: no entry at all
  std::string platform;               // the platform VBNV in the header
  uint64_t cu_base = 0x1800000;       // the compute unit's control base address
};

// The SAT kernel as `v++ -l` links it (hls/cfg/vpp_link.cfg.in): sat_top with the argument list of
// arch::kTopArgs, each DDR channel's bundle on bank c, the instruction stream on bank 0, this
// build's interface version, arch::kDdrChannels banks of `bank_bytes` each (a VCU1525/U200 DIMM
// holds 16 GiB).
XclbinSpec sat_xclbin_spec(uint64_t bank_bytes = 16ull << 30);

// The xclbin (axlf) bytes of `spec`. Throws sat::Error on a spec it cannot encode (a name too long
// for its field, a bank index out of range).
std::vector<char> write_xclbin(const XclbinSpec& spec);
// The same into `path` (atomically); throws sat::Error naming the path on failure.
void write_xclbin_file(const std::string& path, const XclbinSpec& spec);

}  // namespace sat::driver
