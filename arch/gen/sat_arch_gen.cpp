// sat_arch_gen: writes what other languages need of the accelerator contract (arch/include/sat/arch),
// so that no value is written twice. CMake builds and runs it at configure time (arch/CMakeLists.txt):
//   sat_arch.json        the configuration, instruction set, status block, top arguments, interface
//                        version (reports, scripts, the simulator's configuration files)
//   sat_config_pkg.sv    the SystemVerilog package the RTL is parameterised from (rtl/)
//   sat_arch.cmake       the values the Vitis flow's configs are filled with (hls/cmake/Bitstream.cmake)
//   sat_arch.tcl         the same values as Tcl variables, sourced by the Vitis HLS Tcl flow
// Usage: sat_arch_gen OUTDIR
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "sat/arch/bf16_bits.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/interface.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

namespace {

using namespace sat;
using nlohmann::ordered_json;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// One named value of the configuration, as every output spells it.
struct Value {
  const char* key;     // snake_case (JSON, Tcl, CMake after upper-casing)
  const char* sv;      // SystemVerilog localparam name; null: not for the RTL
  long long number;    // integer values
  const char* text;    // string values (number ignored)
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

const Value kValues[] = {
    {"pe_rows", "PE_ROWS", arch::kPeRows, nullptr},
    {"pe_cols", "PE_COLS", arch::kPeCols, nullptr},
    {"pe_lanes", "PE_LANES", arch::kPeLanes, nullptr},
    {"select_window_ratio", "SELECT_WINDOW_RATIO", arch::kSelectWindowRatio, nullptr},
    {"num_supported_m", "NUM_SUPPORTED_M", arch::kNumSupportedM, nullptr},
    {"max_m", "MAX_M", arch::kSupportedM[arch::kNumSupportedM - 1], nullptr},
    {"index_bits", "INDEX_BITS", arch::kIndexBits, nullptr},
    {"banks", "BANKS", arch::kBanks, nullptr},
    {"max_tile_rows", "MAX_TILE_ROWS", arch::kMaxTileRows, nullptr},
    {"max_tile_cols", "MAX_TILE_COLS", arch::kMaxTileCols, nullptr},
    {"max_tile_k", "MAX_TILE_K", arch::kMaxTileK, nullptr},
    {"abuf_elems", "ABUF_ELEMS", arch::kAbufElems, nullptr},
    {"bbuf_elems", "BBUF_ELEMS", arch::kBbufElems, nullptr},
    {"cbuf_elems", "CBUF_ELEMS", arch::kCbufElems, nullptr},
    {"vec_chunk", "VEC_CHUNK", arch::kVecChunk, nullptr},
    {"max_vec_row", "MAX_VEC_ROW", arch::kMaxVecRow, nullptr},
    {"vector_lanes", "VECTOR_LANES", arch::kVectorLanes, nullptr},
    {"insn_words", "INSN_WORDS", arch::kInsnWords, nullptr},
    {"insn_bits", "INSN_BITS", arch::kInsnWords * 32, nullptr},
    {"insn_queue_depth", "INSN_QUEUE_DEPTH", arch::kInsnQueueDepth, nullptr},
    {"token_depth", "TOKEN_DEPTH", arch::kTokenDepth, nullptr},
    {"ddr_channels", "DDR_CHANNELS", arch::kDdrChannels, nullptr},
    {"addr_channel_shift", "ADDR_CHANNEL_SHIFT", arch::kAddrChannelShift, nullptr},
    {"channel_window_bytes", nullptr, static_cast<long long>(arch::kChannelWindowBytes), nullptr},
    {"ddr_bus_bits", "DDR_BUS_BITS", arch::kDdrBusBits, nullptr},
    {"axi_boundary_bytes", nullptr, arch::kAxiBoundaryBytes, nullptr},
    {"ddr_run_beats", nullptr, arch::kDdrRunBeats, nullptr},
    {"arb_link_depth", nullptr, arch::kArbLinkDepth, nullptr},
    {"ddr_read_slots", nullptr, arch::kDdrReadSlots, nullptr},
    {"ddr_write_slots", nullptr, arch::kDdrWriteSlots, nullptr},
    {"fill_link_depth", nullptr, arch::kFillLinkDepth, nullptr},
    {"drain_link_depth", nullptr, arch::kDrainLinkDepth, nullptr},
    {"clock_mhz", "CLOCK_MHZ", arch::kClockMHz, nullptr},
    {"clock_hz", nullptr, static_cast<long long>(arch::kClockMHz) * 1000000, nullptr},
    {"deadlock_rounds", "DEADLOCK_ROUNDS", arch::kDeadlockRounds, nullptr},
    {"status_words", "STATUS_WORDS", isa::kStatusWords, nullptr},
    {"num_units", "NUM_UNITS", isa::kNumUnits, nullptr},
    {"num_exec_units", "NUM_EXEC_UNITS", isa::kNumExecUnits, nullptr},
    {"part", nullptr, 0, arch::kPart},
    {"default_platform", nullptr, 0, arch::kDefaultPlatform},
    {"top_name", nullptr, 0, arch::kTopName},
};

ordered_json describe() {
  ordered_json j;
  j["generator"] = "sat_arch_gen (arch/gen/sat_arch_gen.cpp) from arch/include/sat/arch/*.hpp";
  j["interface_version"] = "0x" + hex32(arch::kInterfaceVersion);
  j["interface_revision"] = arch::kInterfaceRevision;

  ordered_json cfg;
  for (const Value& v : kValues) {
    if (v.text) cfg[v.key] = v.text;
    else cfg[v.key] = v.number;
  }
  cfg["supported_m"] = ordered_json::array();
  for (int i = 0; i < arch::kNumSupportedM; ++i) cfg["supported_m"].push_back(arch::kSupportedM[i]);
  cfg["ddr_channel_gbs"] = arch::kDdrChannelGBs;
  cfg["dataflow_defaults"] = {{"interleave_mapping", arch::kInterleaveMapping},
                              {"pregeneration", arch::kPregeneration},
                              {"offline_scheduling", arch::kOfflineScheduling}};
  j["config"] = cfg;

  ordered_json isa_j;
  isa_j["insn_words"] = arch::kInsnWords;
  isa_j["units"] = ordered_json::array();
#define GEN_UNIT(name, id, doc) isa_j["units"].push_back({{"name", #name}, {"id", id}, {"doc", doc}});
  SAT_ISA_UNITS(GEN_UNIT)
#undef GEN_UNIT
  isa_j["opcodes"] = ordered_json::array();
#define GEN_FIELD(name) fields.push_back(#name);
#define GEN_OPCODE(name, code, unit, flags)                                                      \
  {                                                                                              \
    ordered_json fields = ordered_json::array();                                                 \
    SAT_ISA_FIELDS_##name(GEN_FIELD)                                                             \
    isa_j["opcodes"].push_back(                                                                  \
        {{"name", #name}, {"code", code}, {"unit", #unit}, {"flags", flags}, {"fields", fields}}); \
  }
  SAT_ISA_OPCODES(GEN_OPCODE)
#undef GEN_OPCODE
#undef GEN_FIELD
  j["isa"] = isa_j;

  ordered_json st;
  st["words"] = isa::kStatusWords;
  st["no_opcode"] = isa::kNoOpcode;
  st["codes"] = ordered_json::array();
#define GEN_STATUS(name, value, doc) st["codes"].push_back({{"name", #name}, {"value", value}, {"doc", doc}});
  SAT_STATUS_CODES(GEN_STATUS)
#undef GEN_STATUS
  st["layout"] = ordered_json::array();
#define GEN_WORD(name, index, doc) st["layout"].push_back({{"name", #name}, {"index", index}, {"doc", doc}});
  SAT_STATUS_WORDS(GEN_WORD)
#undef GEN_WORD
  j["status"] = st;

  ordered_json top;
  top["name"] = arch::kTopName;
  top["args"] = ordered_json::array();
  for (const arch::TopArg& a : arch::kTopArgs) {
    ordered_json arg = {{"name", a.name}, {"kind", arch::top_arg_kind_name(a.kind)}};
    if (a.bundle[0]) arg["bundle"] = a.bundle;
    if (a.channel >= 0) arg["channel"] = a.channel;
    top["args"].push_back(arg);
  }
  j["top"] = top;
  return j;
}

std::string sv_package() {
  std::ostringstream o;
  o << "// Generated by sat_arch_gen (arch/gen/sat_arch_gen.cpp) from arch/include/sat/arch/*.hpp.\n"
       "// Do not edit: change the configuration there; CMake writes this file again.\n"
       "// A package of constants: a design reads the few it needs, so Verilator's -Wall would flag\n"
       "// the others as unused.\n"
       "/* verilator lint_off UNUSEDPARAM */\n"
       "package sat_config_pkg;\n";
  o << "  localparam logic [31:0] INTERFACE_VERSION = 32'h" << hex32(arch::kInterfaceVersion) << ";\n";
  for (const Value& v : kValues) {
    if (v.sv) o << "  localparam int " << v.sv << " = " << v.number << ";\n";
  }
  for (int i = 0; i < arch::kNumSupportedM; ++i) {
    o << "  localparam int SUPPORTED_M_" << i << " = " << arch::kSupportedM[i] << ";\n";
  }
  uint32_t mask = 0;
  for (int i = 0; i < arch::kNumSupportedM; ++i) mask |= 1u << arch::kSupportedM[i];
  o << "  // Bit m is set when M = m is supported.\n";
  o << "  localparam logic [31:0] SUPPORTED_M_MASK = 32'h" << hex32(mask) << ";\n";
  o << "  // The quiet NaN every NaN result of the PE array is written as (bf16_bits.hpp).\n";
  o << "  localparam logic [31:0] CANONICAL_NAN = 32'h" << hex32(kCanonicalNanBits) << ";\n";
  o << "  // Units (token-queue bit positions) and opcodes of the instruction set.\n";
#define GEN_SV_UNIT(name, id, doc) o << "  localparam int UNIT_" #name " = " << id << ";\n";
  SAT_ISA_UNITS(GEN_SV_UNIT)
#undef GEN_SV_UNIT
#define GEN_SV_OP(name, code, unit, flags) \
  o << "  localparam logic [7:0] OP_" #name " = 8'h" << hex32(code).substr(6) << ";\n";
  SAT_ISA_OPCODES(GEN_SV_OP)
#undef GEN_SV_OP
#define GEN_SV_STATUS(name, value, doc) o << "  localparam int STATUS_" #name " = " << value << ";\n";
  SAT_STATUS_CODES(GEN_SV_STATUS)
#undef GEN_SV_STATUS
#define GEN_SV_STATUS_WORD(name, index, doc) o << "  localparam int STW_" #name " = " << index << ";\n";
  SAT_STATUS_WORDS(GEN_SV_STATUS_WORD)
#undef GEN_SV_STATUS_WORD
  o << "endpackage\n/* verilator lint_on UNUSEDPARAM */\n";
  return o.str();
}

std::string cmake_values() {
  std::ostringstream o;
  o << "# Generated by sat_arch_gen from arch/include/sat/arch/*.hpp; included by CMake. Do not edit.\n";
  o << "set(SAT_ARCH_INTERFACE_VERSION \"0x" << hex32(arch::kInterfaceVersion) << "\")\n";
  for (const Value& v : kValues) {
    o << "set(SAT_ARCH_" << upper(v.key) << " \"";
    if (v.text) o << v.text;
    else o << v.number;
    o << "\")\n";
  }
  // The m_axi bundles and the DDR bank each connects to (the v++ link's sp= lines).
  o << "set(SAT_ARCH_TOP_BUNDLES";
  for (const arch::TopArg& a : arch::kTopArgs) {
    if (a.kind == arch::TopArgKind::insn_stream || a.kind == arch::TopArgKind::ddr) {
      o << " \"" << a.bundle << ":" << (a.channel < 0 ? 0 : a.channel) << "\"";
    }
  }
  o << ")\n";
  return o.str();
}

std::string tcl_values() {
  std::ostringstream o;
  o << "# Generated by sat_arch_gen from arch/include/sat/arch/*.hpp; sourced by run_hls.tcl. Do not edit.\n";
  o << "set sat_interface_version 0x" << hex32(arch::kInterfaceVersion) << "\n";
  for (const Value& v : kValues) {
    o << "set sat_" << v.key << " ";
    if (v.text) o << "{" << v.text << "}";
    else o << v.number;
    o << "\n";
  }
  return o.str();
}

// Writes `text` to dir/name unless the file already holds it (keeps timestamps, so that nothing
// that depends on it rebuilds after a configure that changed nothing).
bool write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream old;
      old << in.rdbuf();
      if (old.str() == text) return true;
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "sat_arch_gen: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: sat_arch_gen OUTDIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  const bool ok = write(dir, "sat_arch.json", describe().dump(2) + "\n") &&
                  write(dir, "sat_config_pkg.sv", sv_package()) &&
                  write(dir, "sat_arch.cmake", cmake_values()) && write(dir, "sat_arch.tcl", tcl_values());
  return ok ? 0 : 1;
}
