#include "xclbin_check.hpp"

#include <xrt/xclbin.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "sat/arch/interface.hpp"
#include "sat/error.hpp"
#include "sat_driver/xclbin_writer.hpp"
#include "xrt_support.hpp"

namespace sat::driver::detail {

namespace {

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

std::vector<char> read_file(const std::string& path) {
  std::error_code ec;
  if (path.empty()) {
    throw Error("device 'fpga' needs the SAT xclbin: pass --xclbin FILE or set SAT_XCLBIN (docs/fpga.md)");
  }
  if (!std::filesystem::exists(path, ec)) {
    throw Error("device 'fpga': xclbin '" + path + "' does not exist (build it with the 'xclbin' target, "
                "docs/fpga-build.md, or pass the path of the one you have)");
  }
  if (!std::filesystem::is_regular_file(path, ec)) throw Error("device 'fpga': xclbin '" + path + "' is not a file");
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw Error("device 'fpga': cannot read xclbin '" + path + "'");
  return bytes;
}

// The axlf structure checked before XRT parses it: XRT trusts the section table, so a truncated or
// foreign file must not reach it.
void check_axlf(const std::string& path, const std::vector<char>& b) {
  const std::string who = "device 'fpga': xclbin '" + path + "' is malformed: ";
  if (b.size() < sizeof(axlf) || std::memcmp(b.data(), "xclbin2", 8) != 0) {
    throw Error(who + "it does not start with the axlf magic 'xclbin2' (" + std::to_string(b.size()) +
                " bytes; is it an xclbin at all?)");
  }
  axlf top;
  std::memcpy(&top, b.data(), sizeof top);
  if (top.m_header.m_length != b.size()) {
    throw Error(who + "its header gives a length of " + std::to_string(top.m_header.m_length) + " bytes, the file has " +
                std::to_string(b.size()) + " (truncated or appended to?)");
  }
  const uint64_t n = top.m_header.m_numSections;
  if (n == 0 || n > XCLBIN_MAX_NUM_SECTION ||
      offsetof(axlf, m_sections) + n * sizeof(axlf_section_header) > b.size()) {
    throw Error(who + "its section table (" + std::to_string(n) + " sections) does not fit in the file");
  }
  for (uint64_t i = 0; i < n; ++i) {
    axlf_section_header h;
    std::memcpy(&h, b.data() + offsetof(axlf, m_sections) + i * sizeof h, sizeof h);
    if (h.m_sectionOffset > b.size() || h.m_sectionSize > b.size() - h.m_sectionOffset) {
      throw Error(who + "section " + std::to_string(i) + " (kind " + std::to_string(h.m_sectionKind) +
                  ") lies outside the file");
    }
  }
}

// The interface version the bitstream flow stamped into KEYVALUE_METADATA.
void check_interface_version(const std::string& path, const std::vector<char>& b) {
  const std::string want = hex32(arch::kInterfaceVersion);
  const std::string stamp = std::string("xclbinutil --key-value USER:") + kInterfaceVersionKey + ":" + want;
  axlf top;
  std::memcpy(&top, b.data(), sizeof top);
  std::string value;
  bool found = false;
  for (uint32_t i = 0; i < top.m_header.m_numSections && !found; ++i) {
    axlf_section_header h;
    std::memcpy(&h, b.data() + offsetof(axlf, m_sections) + i * sizeof h, sizeof h);
    if (h.m_sectionKind != KEYVALUE_METADATA) continue;
    const nlohmann::json j = nlohmann::json::parse(b.data() + h.m_sectionOffset,
                                                   b.data() + h.m_sectionOffset + h.m_sectionSize, nullptr, false);
    if (j.is_discarded() || !j.contains("key_values") || !j["key_values"].is_array()) {
      throw Error("device 'fpga': xclbin '" + path + "' is malformed: its KEYVALUE_METADATA is not the JSON xclbinutil writes");
    }
    for (const auto& kv : j["key_values"]) {
      if (kv.is_object() && kv.value("key", "") == kInterfaceVersionKey && kv.contains("value") && kv["value"].is_string()) {
        value = kv["value"].get<std::string>();
        found = true;
      }
    }
  }
  if (!found) {
    throw Error("device 'fpga': xclbin '" + path + "' carries no SAT interface version (key '" + kInterfaceVersionKey +
                "' of its KEYVALUE_METADATA): the bitstream flow of this tree stamps it (hls/cmake/Bitstream.cmake); "
                "for an xclbin built otherwise from this tree's kernel, stamp it with '" + stamp + "'");
  }
  unsigned long long v = 0;
  char* end = nullptr;
  v = std::strtoull(value.c_str(), &end, 0);
  if (value.empty() || *end != '\0' || v != arch::kInterfaceVersion) {
    throw Error("device 'fpga': xclbin '" + path + "' was built for interface version " + value + ", this host for " +
                want + " (arch/include/sat/arch/interface.hpp): rebuild the bitstream and the host from one tree");
  }
}

const char* kind_text(arch::TopArgKind k) {
  switch (k) {
    case arch::TopArgKind::insn_stream: return "a pointer to the instruction stream";
    case arch::TopArgKind::ddr: return "a pointer to a DDR channel";
    case arch::TopArgKind::u32: return "a 32-bit register";
    case arch::TopArgKind::u64: return "a 64-bit register";
    case arch::TopArgKind::status: return "the status words";
  }
  return "?";
}

uint64_t register_bytes(arch::TopArgKind k) {
  switch (k) {
    case arch::TopArgKind::u32: return 4;
    case arch::TopArgKind::u64: return 8;
    case arch::TopArgKind::status: return 4 * isa::kStatusWords;
    default: return 0;
  }
}

std::vector<ArgPlacement> check_kernel(const std::string& path, const xrt::xclbin& x) {
  const std::string who = "device 'fpga': xclbin '" + path + "' ";
  std::vector<xrt::xclbin::kernel> kernels = x.get_kernels();
  std::string names;
  const xrt::xclbin::kernel* top = nullptr;
  for (const auto& k : kernels) {
    names += (names.empty() ? "" : ", ") + k.get_name();
    if (k.get_name() == arch::kTopName) top = &k;
  }
  if (!top) {
    throw Error(who + "has no kernel '" + arch::kTopName + "' (it holds: " + (names.empty() ? "none" : names) +
                "): it is not a SAT xclbin");
  }
  const std::vector<xrt::xclbin::arg> args = top->get_args();
  auto list = [&] {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : ", ") + a.get_name();
    return s;
  };
  if (static_cast<int>(args.size()) != arch::kNumTopArgs) {
    throw Error(who + "has a kernel '" + arch::kTopName + "' with " + std::to_string(args.size()) + " arguments (" +
                list() + "), the contract has " + std::to_string(arch::kNumTopArgs) +
                " (arch/include/sat/arch/interface.hpp): the bitstream was built from another kernel");
  }
  std::vector<ArgPlacement> out;
  for (int i = 0; i < arch::kNumTopArgs; ++i) {
    const arch::TopArg& t = arch::kTopArgs[i];
    const xrt::xclbin::arg& a = args[static_cast<size_t>(i)];
    const std::string at = who + "has '" + arch::kTopName + "' argument " + std::to_string(i) + " '" + a.get_name() + "'";
    if (a.get_name() != t.name) {
      throw Error(at + " where the contract has '" + t.name + "' (arguments: " + list() + ")");
    }
    const bool pointer = t.kind == arch::TopArgKind::insn_stream || t.kind == arch::TopArgKind::ddr;
    const std::vector<xrt::xclbin::mem> mems = a.get_mems();
    if (pointer != !mems.empty() || (!pointer && a.get_size() != register_bytes(t.kind))) {
      throw Error(at + " of " + std::to_string(a.get_size()) + " bytes" + (mems.empty() ? "" : " in memory") +
                  ", the contract's is " + kind_text(t.kind));
    }
    if (pointer && mems.size() != 1) {
      throw Error(at + " is connected to " + std::to_string(mems.size()) +
                  " memory banks; the driver places each channel in one (hls/cfg/vpp_link.cfg.in: one sp= per bundle)");
    }
    ArgPlacement p;
    p.name = t.name;
    p.offset = a.get_offset();
    p.size = a.get_size();
    if (pointer) {
      p.bank = mems[0].get_index();
      p.bank_tag = mems[0].get_tag();
      p.bank_bytes = mems[0].get_size_kb() * 1024;
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace

CheckedXclbin read_sat_xclbin(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  check_axlf(path, bytes);
  CheckedXclbin c{xrt_call("reading xclbin '" + path + "'", "is it an xclbin written by v++ or xclbinutil?",
                           [&] { return xrt::xclbin(bytes); }),
                  {}, {}};
  c.args = xrt_call("reading the kernels of xclbin '" + path + "'", "its EMBEDDED_METADATA must list sat_top",
                    [&] { return check_kernel(path, c.xclbin); });
  check_interface_version(path, bytes);
  c.platform = xrt_call("reading the platform of xclbin '" + path + "'", "its header names the platform",
                        [&] { return c.xclbin.get_xsa_name(); });
  return c;
}

}  // namespace sat::driver::detail
