// The contract (arch/) and what the generator writes from it: the JSON description, the CMake and
// Tcl values of the Vitis flow and the SystemVerilog package hold exactly the values of the
// headers; the interface version word is built as documented; the status decoder names every code.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "sat/arch/config.hpp"
#include "sat/arch/interface.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"
#include "sat/arch/status_text.hpp"

using namespace sat;
using nlohmann::json;

namespace {

std::string generated(const std::string& name) {
  std::ifstream in(std::string(SAT_ARCH_GEN_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << "generated file " << name << " missing in " << SAT_ARCH_GEN_DIR;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

}  // namespace

TEST(ArchGenerated, JsonHoldsTheHeadersValues) {
  const json j = json::parse(generated("sat_arch.json"));
  EXPECT_EQ(j["interface_version"], "0x" + hex(arch::kInterfaceVersion));
  const json& c = j["config"];
  EXPECT_EQ(c["pe_rows"], arch::kPeRows);
  EXPECT_EQ(c["pe_cols"], arch::kPeCols);
  EXPECT_EQ(c["pe_lanes"], arch::kPeLanes);
  EXPECT_EQ(c["max_tile_k"], arch::kMaxTileK);
  EXPECT_EQ(c["ddr_channels"], arch::kDdrChannels);
  EXPECT_EQ(c["channel_window_bytes"], arch::kChannelWindowBytes);
  EXPECT_EQ(c["clock_mhz"], arch::kClockMHz);
  EXPECT_EQ(c["part"], arch::kPart);
  EXPECT_EQ(c["ddr_channel_gbs"], arch::kDdrChannelGBs);
  ASSERT_EQ(c["supported_m"].size(), static_cast<size_t>(arch::kNumSupportedM));
  for (int i = 0; i < arch::kNumSupportedM; ++i) EXPECT_EQ(c["supported_m"][i], arch::kSupportedM[i]);

  // Every opcode with its code, unit and fields in word order.
  size_t n = 0;
  for (const json& op : j["isa"]["opcodes"]) {
    const uint8_t code = op["code"].get<uint8_t>();
    EXPECT_EQ(op["name"], isa::opcode_name(code));
    EXPECT_EQ(op["unit"], isa::unit_name(isa::opcode_unit(code)));
    ASSERT_EQ(op["fields"].size(), static_cast<size_t>(isa::opcode_fields(code))) << op["name"];
    for (size_t f = 0; f < op["fields"].size(); ++f) {
      EXPECT_EQ(op["fields"][f], isa::field_name(code, static_cast<int>(f + 1)));
    }
    ++n;
  }
  EXPECT_EQ(n, 28u);
  EXPECT_EQ(j["isa"]["units"].size(), static_cast<size_t>(isa::kNumUnits));
  EXPECT_EQ(j["status"]["codes"].size(), isa::kNumStatusCodes);
  EXPECT_EQ(j["status"]["words"], isa::kStatusWords);
  ASSERT_EQ(j["top"]["args"].size(), static_cast<size_t>(arch::kNumTopArgs));
  for (int i = 0; i < arch::kNumTopArgs; ++i) {
    EXPECT_EQ(j["top"]["args"][i]["name"], arch::kTopArgs[i].name);
    EXPECT_EQ(j["top"]["args"][i]["kind"], arch::top_arg_kind_name(arch::kTopArgs[i].kind));
  }
}

TEST(ArchGenerated, VitisValuesAndSvPackageComeFromTheHeaders) {
  const std::string cm = generated("sat_arch.cmake");
  EXPECT_NE(cm.find("set(SAT_ARCH_CLOCK_MHZ \"" + std::to_string(arch::kClockMHz) + "\")"), std::string::npos) << cm;
  EXPECT_NE(cm.find("set(SAT_ARCH_PART \"" + std::string(arch::kPart) + "\")"), std::string::npos);
  EXPECT_NE(cm.find("set(SAT_ARCH_DEFAULT_PLATFORM \"" + std::string(arch::kDefaultPlatform) + "\")"), std::string::npos);
  EXPECT_NE(cm.find("\"gmem3:3\""), std::string::npos) << "the DDR bundles of the top arguments";
  const std::string tcl = generated("sat_arch.tcl");
  EXPECT_NE(tcl.find("set sat_part {" + std::string(arch::kPart) + "}"), std::string::npos) << tcl;
  EXPECT_NE(tcl.find("set sat_token_depth " + std::to_string(arch::kTokenDepth)), std::string::npos);
  const std::string sv = generated("sat_config_pkg.sv");
  EXPECT_NE(sv.find("INTERFACE_VERSION = 32'h" + hex(arch::kInterfaceVersion) + ";"), std::string::npos);
  EXPECT_NE(sv.find("localparam int PE_LANES = " + std::to_string(arch::kPeLanes) + ";"), std::string::npos);
  EXPECT_NE(sv.find("localparam logic [7:0] OP_GEMM = 8'h10;"), std::string::npos);
  EXPECT_NE(sv.find("localparam int STW_CYCLES_LO = 9;"), std::string::npos) << "the status words' layout";
  EXPECT_NE(sv.find("localparam int STW_DRAM_WRITE_HI = 15;"), std::string::npos);
  uint32_t mask = 0;
  for (int i = 0; i < arch::kNumSupportedM; ++i) mask |= 1u << arch::kSupportedM[i];
  EXPECT_NE(sv.find("SUPPORTED_M_MASK = 32'h" + hex(mask)), std::string::npos);
  // The bitstream configs were filled from those values (hls/cmake/Bitstream.cmake).
  std::ifstream link(std::string(SAT_BINARY_DIR) + "/hls/cfg/vpp_link.cfg");
  ASSERT_TRUE(link);
  std::ostringstream ls;
  ls << link.rdbuf();
  EXPECT_NE(ls.str().find("freqHz=" + std::to_string(arch::kClockMHz * 1000000) + ":sat_top_1"), std::string::npos);
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    const std::string sp = "sp=sat_top_1.m_axi_gmem" + std::to_string(c) + ":DDR[" + std::to_string(c) + "]";
    EXPECT_NE(ls.str().find(sp), std::string::npos) << sp;
  }
}

TEST(ArchInterface, VersionWordCarriesTheRevisionAndAHash) {
  EXPECT_EQ(arch::kInterfaceVersion >> 24, arch::kInterfaceRevision);
  EXPECT_EQ(arch::kInterfaceVersion & 0xffffffu, arch::interface_detail::contract_hash() & 0xffffffu);
  // FNV-1a as documented: the hash of "a" is 0xe40c292c.
  arch::interface_detail::Fnv1a f;
  f.byte('a');
  EXPECT_EQ(f.h, 0xe40c292cu);
}

TEST(ArchStatus, EveryCodeHasAMessage) {
  std::array<uint32_t, isa::kStatusWords> st{};
  for (uint32_t code = 0; code < isa::kNumStatusCodes; ++code) {
    st[isa::STW_CODE] = code;
    const std::string m = isa::status_message(st);
    EXPECT_EQ(m.find("unknown kernel status"), std::string::npos) << code << ": " << m;
  }
  st[isa::STW_CODE] = isa::kNumStatusCodes;
  EXPECT_NE(isa::status_message(st).find("unknown kernel status code"), std::string::npos);
  st[isa::STW_CODE] = isa::STATUS_BAD_FIELD;
  st[isa::STW_OPCODE] = isa::OP_GEMM;
  st[isa::STW_FIELD] = isa::f_GEMM::kt;
  st[isa::STW_VALUE] = 9999;
  const std::string m = isa::status_message(st);
  EXPECT_NE(m.find("field 'kt'"), std::string::npos) << m;
  EXPECT_NE(m.find("GEMM on unit GEMM"), std::string::npos) << m;
}

// The counters of status words 9-15: 64-bit values split low word first, and a table whose names
// enter the interface version (renaming a word changes the word).
TEST(Status, CountersSplitOverTwoWordsLowFirst) {
  uint32_t st[isa::kStatusWords] = {};
  isa::set_status_u64(st, isa::STW_DRAM_READ_LO, 0x123456789abcull);
  EXPECT_EQ(st[isa::STW_DRAM_READ_LO], 0x56789abcu);
  EXPECT_EQ(st[isa::STW_DRAM_READ_HI], 0x1234u);
  EXPECT_EQ(isa::status_u64(st, isa::STW_DRAM_READ_LO), 0x123456789abcull);
  EXPECT_EQ(isa::kStatusWords, isa::STW_DRAM_WRITE_HI + 1);
  EXPECT_EQ(isa::kOutcomeWords, isa::STW_INTERFACE + 1);
}
