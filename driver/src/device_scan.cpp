// `sat devices`: what XRT sees on this machine, or why it sees nothing.
#include <experimental/xrt_system.h>
#include <xrt/xrt_device.h>

#include <cstdlib>
#include <functional>

#include <nlohmann/json.hpp>

#include "sat_driver/xrt_device.hpp"
#include "xrt_support.hpp"

namespace sat::driver {

namespace {

std::string query(const std::function<std::string()>& f) {
  try {
    std::string v = f();
    return v.empty() ? "unknown (XRT reports an empty value)" : v;
  } catch (const std::exception& e) {
    return std::string("unknown (XRT: ") + e.what() + ")";
  }
}

// The shell's name from the platform report (a JSON document whose layout varies across XRT
// releases): the first "vbnv" anywhere in it.
std::string find_vbnv(const nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "vbnv" && it->is_string()) return it->get<std::string>();
      if (std::string v = find_vbnv(*it); !v.empty()) return v;
    }
  } else if (j.is_array()) {
    for (const auto& e : j) {
      if (std::string v = find_vbnv(e); !v.empty()) return v;
    }
  }
  return "";
}

XrtCard describe(const xrt::device& d, int index) {
  XrtCard c;
  c.index = index;
  c.name = query([&] { return d.get_info<xrt::info::device::name>(); });
  c.bdf = query([&] { return d.get_info<xrt::info::device::bdf>(); });
  c.shell = query([&] {
    const std::string v = find_vbnv(nlohmann::json::parse(d.get_info<xrt::info::device::platform>()));
    if (v.empty()) throw std::runtime_error("no vbnv in the platform report");
    return v;
  });
  return c;
}

}  // namespace

XrtScan scan_xrt_devices() {
  XrtScan s;
  s.environment = detail::xrt_environment();
  if (!std::getenv("XILINX_XRT")) {
    s.why_none = detail::open_advice();
    return s;
  }
  unsigned int n = 0;
  try {
    n = xrt::system::enumerate_devices();
  } catch (const std::exception& e) {
    s.why_none = std::string("XRT could not start: ") + e.what() + " (" + detail::open_advice() + ")";
    return s;
  }
  if (n == 0 && detail::noop_shim()) {
    // The no-op shim enumerates nothing but opens any index: card 0 is what the driver would use.
    try {
      const detail::Owned<detail::Kind::device, xrt::device> d{xrt::device(0u)};
      XrtCard c = describe(*d, 0);
      c.note = "XRT's no-op shim (XCL_EMULATION_MODE=noop): no board behind it; buffers allocate and sync, but no "
               "kernel runs and no register can be read";
      s.cards.push_back(c);
    } catch (const std::exception& e) {
      s.why_none = std::string("XRT's no-op shim is selected but card 0 does not open: ") + e.what() + " (" +
                   detail::open_advice() + ")";
    }
    return s;
  }
  if (n == 0) {
    s.why_none = "XRT finds no card: no Alveo U200/VCU1525 with the xocl and xclmgmt drivers loaded on this machine "
                 "('lspci -d 10ee:' lists Xilinx PCIe devices; docs/fpga.md, \"Installing XRT and the platform\")";
    return s;
  }
  for (unsigned int i = 0; i < n; ++i) {
    try {
      const detail::Owned<detail::Kind::device, xrt::device> d{xrt::device(i)};
      s.cards.push_back(describe(*d, static_cast<int>(i)));
    } catch (const std::exception& e) {
      XrtCard c;
      c.index = static_cast<int>(i);
      c.name = c.bdf = c.shell = "unknown";
      c.note = std::string("does not open: ") + e.what() + " (is another process holding it? 'xbutil examine')";
      s.cards.push_back(c);
    }
  }
  return s;
}

}  // namespace sat::driver
