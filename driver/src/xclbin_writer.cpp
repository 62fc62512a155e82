// The metadata-only xclbin of the SAT kernel (sat_driver/xclbin_writer.hpp), written from the
// structures of XRT's xrt/xclbin.h. Layout: the axlf header with one section header per section,
// then each section's bytes at an 8-byte aligned offset.
#include "sat_driver/xclbin_writer.hpp"

#include <xrt/xclbin.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sat/arch/config.hpp"
#include "sat/arch/interface.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"

namespace sat::driver {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// A name into a fixed, NUL-terminated field; refused rather than cut, since XRT matches names.
template <size_t N, typename Char>
void put_name(Char (&field)[N], const std::string& s, const char* what) {
  if (s.size() >= N) {
    throw Error("xclbin writer: " + std::string(what) + " '" + s + "' is longer than its field (" +
                std::to_string(N - 1) + " characters)");
  }
  std::memset(field, 0, N);
  std::memcpy(field, s.data(), s.size());
}

// Where each argument sits in the control register space, as Vitis HLS places them: the
// block-level control registers at 0x00-0x0f, then each scalar or pointer (a 64-bit value takes
// 12 bytes, a 32-bit one 8), then an array such as the status words at the next boundary of its
// own size.
void place_registers(std::vector<XclbinArg>& args) {
  uint64_t at = 0x10;
  for (XclbinArg& a : args) {
    if (a.size > 8) continue;
    a.offset = at;
    at += a.size == 8 ? 12 : 8;
  }
  for (XclbinArg& a : args) {
    if (a.size <= 8) continue;
    at = (at + a.size - 1) / a.size * a.size;
    a.offset = at;
    at += a.size;
  }
}

std::string embedded_metadata(const XclbinSpec& s) {
  std::string ports, args;
  std::vector<std::string> seen;
  for (const XclbinArg& a : s.args) {
    if (!a.global || std::find(seen.begin(), seen.end(), a.port) != seen.end()) continue;
    seen.push_back(a.port);
    ports += "<port name=\"" + a.port + "\" mode=\"master\" range=\"0xFFFFFFFFFFFFFFFF\" dataWidth=\"" +
             std::to_string(arch::kDdrBusBits) + "\" portType=\"addressable\" base=\"0x0\"/>";
  }
  ports += "<port name=\"S_AXI_CONTROL\" mode=\"slave\" range=\"0x1000\" dataWidth=\"32\" "
           "portType=\"addressable\" base=\"0x0\"/>";
  for (size_t i = 0; i < s.args.size(); ++i) {
    const XclbinArg& a = s.args[i];
    args += "<arg name=\"" + a.name + "\" addressQualifier=\"" + (a.global ? "1" : "0") + "\" id=\"" +
            std::to_string(i) + "\" port=\"" + a.port + "\" size=\"" + hex(a.size) + "\" offset=\"" +
            hex(a.offset) + "\" hostOffset=\"0x0\" hostSize=\"" + hex(a.size) + "\" type=\"" + a.host_type + "\"/>";
  }
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<project name=\"sat\"><platform vendor=\"xilinx\" boardid=\"u200\" name=\"" + s.platform +
         "\" featureRomTime=\"0\"><version major=\"1\" minor=\"0\"/><description/>"
         "<device name=\"fpga0\" fpgaDevice=\"virtexuplus\" addrWidth=\"0\"><core name=\"OCL_REGION_0\" "
         "target=\"bitstream\" type=\"clc_region\" clockFreq=\"" + std::to_string(arch::kClockMHz) +
         "MHz\" numComputeUnits=\"1\"><kernel name=\"" + s.kernel +
         "\" language=\"c\" vlnv=\"xilinx.com:hls:" + s.kernel +
         ":1.0\" preferredWorkGroupSizeMultiple=\"0\" workGroupSize=\"1\" interrupt=\"true\" "
         "hwControlProtocol=\"ap_ctrl_chain\">" + ports + args + "<instance name=\"" + s.instance +
         "\"><addrRemap base=\"" + hex(s.cu_base) + "\" port=\"S_AXI_CONTROL\"/></instance></kernel>"
         "</core></device></platform></project>\n";
}

template <typename T>
void append_pod(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string mem_topology(const XclbinSpec& s) {
  std::string out;
  append_pod(out, static_cast<int32_t>(s.bank_bytes.size()));
  out.resize(8, '\0');   // m_mem_data is 8-byte aligned after m_count
  uint64_t base = 0;
  for (size_t b = 0; b < s.bank_bytes.size(); ++b) {
    mem_data m{};
    m.m_type = MEM_DDR4;
    m.m_used = 1;
    m.m_size = s.bank_bytes[b] >> 10;
    m.m_base_address = base;
    base += s.bank_bytes[b];
    put_name(m.m_tag, "DDR[" + std::to_string(b) + "]", "memory tag");
    append_pod(out, m);
  }
  return out;
}

std::string ip_layout_section(const XclbinSpec& s) {
  std::string out;
  append_pod(out, static_cast<int32_t>(1));
  out.resize(8, '\0');
  ip_data ip{};
  ip.m_type = IP_KERNEL;
  ip.properties = IP_INT_ENABLE_MASK | (AP_CTRL_CHAIN << IP_CONTROL_SHIFT);
  ip.m_base_address = s.cu_base;
  put_name(ip.m_name, s.kernel + ":" + s.instance, "compute unit name");
  append_pod(out, ip);
  return out;
}

std::string connectivity_section(const XclbinSpec& s) {
  std::string body;
  int32_t n = 0;
  for (size_t i = 0; i < s.args.size(); ++i) {
    const XclbinArg& a = s.args[i];
    if (!a.global) continue;
    if (a.bank < 0 || static_cast<size_t>(a.bank) >= s.bank_bytes.size()) {
      throw Error("xclbin writer: argument '" + a.name + "' is connected to bank " + std::to_string(a.bank) +
                  ", but the xclbin has " + std::to_string(s.bank_bytes.size()) + " banks");
    }
    append_pod(body, connection{static_cast<int32_t>(i), 0, a.bank});
    ++n;
  }
  std::string out;
  append_pod(out, n);
  return out + body;
}

std::string keyvalue_metadata(const XclbinSpec& s) {
  // The JSON xclbinutil writes for `--key-value USER:<key>:<value>`.
  nlohmann::json kv = {{"key_values", nlohmann::json::array({{{"key", kInterfaceVersionKey},
                                                               {"value", s.interface_version}}})}};
  return kv.dump();
}

}  // namespace

XclbinSpec sat_xclbin_spec(uint64_t bank_bytes) {
  XclbinSpec s;
  s.kernel = arch::kTopName;
  s.instance = s.kernel + "_1";
  for (const arch::TopArg& t : arch::kTopArgs) {
    XclbinArg a;
    a.name = t.name;
    switch (t.kind) {
      case arch::TopArgKind::insn_stream:
      case arch::TopArgKind::ddr:
        a.global = true;
        a.size = 8;
        a.host_type = t.kind == arch::TopArgKind::ddr ? "unsigned short*" : "void*";
        a.port = "M_AXI_" + upper(t.bundle);
        // v++ links bundle gmem<c> to DDR[c] and the instruction stream to DDR[0] (vpp_link.cfg.in).
        a.bank = t.channel < 0 ? 0 : t.channel;
        break;
      case arch::TopArgKind::u32:
        a.size = 4;
        a.host_type = "unsigned int";
        break;
      case arch::TopArgKind::u64:
        a.size = 8;
        a.host_type = "unsigned long long";
        break;
      case arch::TopArgKind::status:
        a.size = 4 * isa::kStatusWords;
        a.host_type = "unsigned int*";
        break;
    }
    if (!a.global) a.port = "S_AXI_CONTROL";
    s.args.push_back(a);
  }
  place_registers(s.args);
  s.bank_bytes.assign(arch::kDdrChannels, bank_bytes);
  char v[16];
  std::snprintf(v, sizeof v, "0x%08x", arch::kInterfaceVersion);
  s.interface_version = v;
  s.platform = arch::kDefaultPlatform;
  return s;
}

std::vector<char> write_xclbin(const XclbinSpec& spec) {
  std::vector<std::pair<axlf_section_kind, std::string>> sections = {
      {MEM_TOPOLOGY, mem_topology(spec)},
      {IP_LAYOUT, ip_layout_section(spec)},
      {CONNECTIVITY, connectivity_section(spec)},
      {EMBEDDED_METADATA, embedded_metadata(spec)},
  };
  if (!spec.interface_version.empty()) sections.emplace_back(KEYVALUE_METADATA, keyvalue_metadata(spec));

  const size_t header = sizeof(axlf) + (sections.size() - 1) * sizeof(axlf_section_header);
  auto align8 = [](size_t n) { return (n + 7) & ~size_t{7}; };
  size_t total = align8(header);
  for (const auto& [kind, bytes] : sections) total = align8(total + bytes.size());

  std::vector<char> out(total, '\0');
  auto* top = reinterpret_cast<axlf*>(out.data());
  std::memcpy(top->m_magic, "xclbin2", 8);
  top->m_signature_length = -1;
  std::memset(top->reserved, 0xff, sizeof top->reserved);
  std::memset(top->m_keyBlock, 0xff, sizeof top->m_keyBlock);
  top->m_header.m_length = total;
  top->m_header.m_versionMajor = 2;
  top->m_header.m_mode = XCLBIN_PR;
  put_name(top->m_header.m_platformVBNV, spec.platform, "platform name");
  // A UUID from the contents, so the same spec gives the same file and another spec another UUID.
  const std::string meta = sections[3].second + sections[2].second + sections[0].second + spec.interface_version;
  uint32_t words[4];
  for (uint32_t i = 0; i < 4; ++i) words[i] = checksum_crc32(meta.data(), meta.size(), 0x9e3779b9u * (i + 1));
  std::memcpy(&top->m_header.uuid, words, sizeof words);
  top->m_uniqueId = words[0];
  top->m_header.m_numSections = static_cast<uint32_t>(sections.size());

  size_t at = align8(header);
  for (size_t i = 0; i < sections.size(); ++i) {
    // Through a copy: m_sections is declared with one element and the others follow it.
    axlf_section_header h{};
    h.m_sectionKind = sections[i].first;
    static const char* const kNames[] = {"", "", "EMBEDDED_METADATA", "", "", "", "MEM_TOPOLOGY", "CONNECTIVITY",
                                         "IP_LAYOUT", "", "", "", "", "", "", "KEYVALUE_METADATA"};
    std::strncpy(h.m_sectionName, kNames[sections[i].first], sizeof h.m_sectionName - 1);
    h.m_sectionOffset = at;
    h.m_sectionSize = sections[i].second.size();
    std::memcpy(out.data() + offsetof(axlf, m_sections) + i * sizeof h, &h, sizeof h);
    std::memcpy(out.data() + at, sections[i].second.data(), sections[i].second.size());
    at = align8(at + sections[i].second.size());
  }
  return out;
}

void write_xclbin_file(const std::string& path, const XclbinSpec& spec) {
  const std::vector<char> bytes = write_xclbin(spec);
  atomic_write_file(path, std::string_view(bytes.data(), bytes.size()));
}

}  // namespace sat::driver
