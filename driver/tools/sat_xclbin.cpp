// sat_xclbin: writes a metadata-only xclbin of the SAT kernel (no bitstream): what XRT's no-op shim
// loads, and a reference for what the `fpga` device expects of a real one (docs/fpga.md).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sat/error.hpp"
#include "sat_driver/xclbin_writer.hpp"

namespace {

const char* kUsage =
    "usage: sat_xclbin OUT.xclbin [--bank-mib N] [--kernel NAME] [--interface-version HEX|none]\n"
    "\n"
    "Writes an xclbin holding the SAT kernel's metadata and no bitstream: sat_top with the argument list of\n"
    "arch/include/sat/arch/interface.hpp, one DDR bank per channel (--bank-mib each, default 16384), the\n"
    "instruction stream on bank 0 and this build's interface version. It loads under XRT's no-op shim\n"
    "(XCL_EMULATION_MODE=noop), not on a card. --kernel and --interface-version write a wrong one on purpose.\n";

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "error: sat_xclbin: %s\n\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  unsigned long long bank_mib = 16384;
  std::string kernel, version;
  bool kernel_set = false, version_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--bank-mib") {
      const std::string v = value();
      char* end = nullptr;
      bank_mib = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || bank_mib == 0 || bank_mib > (1ull << 24)) usage("--bank-mib must be between 1 and 16777216, got '" + v + "'");
    } else if (a == "--kernel") {
      kernel = value();
      kernel_set = true;
    } else if (a == "--interface-version") {
      version = value();
      version_set = true;
    } else if (!a.empty() && a[0] == '-') {
      usage("unknown flag " + a);
    } else if (out.empty()) {
      out = a;
    } else {
      usage("one output file only (got '" + out + "' and '" + a + "')");
    }
  }
  if (out.empty()) usage("the output file is missing");
  try {
    sat::driver::XclbinSpec spec = sat::driver::sat_xclbin_spec(bank_mib << 20);
    if (kernel_set) spec.kernel = kernel;
    if (version_set) spec.interface_version = version == "none" ? "" : version;
    sat::driver::write_xclbin_file(out, spec);
    std::printf("wrote %s: kernel %s, %zu banks of %llu MiB, interface version %s\n", out.c_str(), spec.kernel.c_str(),
                spec.bank_bytes.size(), bank_mib, spec.interface_version.empty() ? "none" : spec.interface_version.c_str());
  } catch (const sat::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
