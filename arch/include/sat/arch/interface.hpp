#pragma once
// The kernel's interface to its host: the top function's argument list, and the interface version
// word that names this contract (configuration, instruction set, status block, arguments) in 32
// bits. A stream, a trace or a bitstream carries the word it was made for; a target refuses a
// different one. Dependency-free C++17.
#include <cstdint>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

namespace sat::arch {

// ---- The top function `sat_top`, argument by argument, in order ---------------------------------
// kind: insn_stream (m_axi, 512-bit instructions), ddr (m_axi, one DDR channel as halfwords),
// u32 / u64 (s_axilite scalars), status (s_axilite, isa::kStatusWords words out).
// bundle: the m_axi bundle of a pointer argument (the v++ link connects bundle gmem<c> to DDR
// bank c, and the instruction stream to bank 0); "" for scalars.
#define SAT_TOP_ARGS(X)                  \
  X(insns, insn_stream, "ginsn", -1)     \
  X(count, u32, "", -1)                  \
  X(gmem0, ddr, "gmem0", 0)              \
  X(gmem1, ddr, "gmem1", 1)              \
  X(gmem2, ddr, "gmem2", 2)              \
  X(gmem3, ddr, "gmem3", 3)              \
  X(halfwords0, u64, "", 0)              \
  X(halfwords1, u64, "", 1)              \
  X(halfwords2, u64, "", 2)              \
  X(halfwords3, u64, "", 3)              \
  X(status, status, "", -1)

enum class TopArgKind : uint8_t { insn_stream, ddr, u32, u64, status };

struct TopArg {
  const char* name;
  TopArgKind kind;
  const char* bundle;
  int channel;   // the DDR channel of a ddr pointer or its size; -1 otherwise
};

inline constexpr TopArg kTopArgs[] = {
#define SAT_TOP_ARG_ENTRY(name, kind, bundle, channel) {#name, TopArgKind::kind, bundle, channel},
    SAT_TOP_ARGS(SAT_TOP_ARG_ENTRY)
#undef SAT_TOP_ARG_ENTRY
};
inline constexpr int kNumTopArgs = sizeof(kTopArgs) / sizeof(kTopArgs[0]);
inline constexpr const char* kTopName = "sat_top";

inline const char* top_arg_kind_name(TopArgKind k) {
  switch (k) {
    case TopArgKind::insn_stream: return "insn_stream";
    case TopArgKind::ddr: return "ddr";
    case TopArgKind::u32: return "u32";
    case TopArgKind::u64: return "u64";
    case TopArgKind::status: return "status";
  }
  return "?";
}

constexpr int count_top_args(TopArgKind k) {
  int n = 0;
  for (const TopArg& a : kTopArgs) n += a.kind == k ? 1 : 0;
  return n;
}
static_assert(count_top_args(TopArgKind::ddr) == kDdrChannels, "one m_axi port per DDR channel");
static_assert(count_top_args(TopArgKind::u64) == kDdrChannels, "one size argument per DDR channel");

// ---- The interface version word -----------------------------------------------------------------
// Bits 31-24: kInterfaceRevision, raised by hand when a meaning changes that the tables below do
// not show (an instruction's semantics, a layout). Bits 23-0: a hash (FNV-1a) of everything a
// target must agree on: the configuration values the kernel depends on, every unit, opcode, field
// name and status word, and the top function's arguments. A changed table changes the word.
inline constexpr uint32_t kInterfaceRevision = 4;   // 2: LD_CONV b2, PGEN b3; 3: LD_CONV b3, V_BN b1 mask, PGEN b4; 4: ST_2D b3, b4

namespace interface_detail {

struct Fnv1a {
  uint32_t h = 2166136261u;
  constexpr Fnv1a& byte(uint32_t b) {
    h = (h ^ (b & 0xffu)) * 16777619u;
    return *this;
  }
  constexpr Fnv1a& num(uint64_t v) {
    for (int i = 0; i < 8; ++i) byte(static_cast<uint32_t>(v >> (8 * i)));
    return *this;
  }
  constexpr Fnv1a& str(const char* s) {
    while (*s) byte(static_cast<uint32_t>(static_cast<unsigned char>(*s++)));
    return byte(0);
  }
};

constexpr uint32_t contract_hash() {
  Fnv1a f;
  f.num(kPeRows).num(kPeCols).num(kPeLanes).num(kSelectWindowRatio).num(kIndexBits).num(kNumSupportedM);
  for (int i = 0; i < kNumSupportedM; ++i) f.num(kSupportedM[i]);
  f.num(kBanks).num(kMaxTileRows).num(kMaxTileCols).num(kMaxTileK).num(kVecChunk).num(kMaxVecRow);
  f.num(kInsnWords).num(kInsnQueueDepth).num(kTokenDepth);
  f.num(kDdrChannels).num(kAddrChannelShift).num(kChannelWindowBytes).num(kDdrBusBits);
  f.num(kDeadlockRounds);
#define SAT_IFACE_UNIT(name, id, doc) f.str(#name).num(id);
  SAT_ISA_UNITS(SAT_IFACE_UNIT)
#undef SAT_IFACE_UNIT
#define SAT_IFACE_FIELD(name) f.str(#name);
#define SAT_IFACE_OPCODE(name, code, unit, flags) \
  f.str(#name).num(code).num(isa::UNIT_##unit);   \
  SAT_ISA_FIELDS_##name(SAT_IFACE_FIELD)
  SAT_ISA_OPCODES(SAT_IFACE_OPCODE)
#undef SAT_IFACE_OPCODE
#undef SAT_IFACE_FIELD
  f.num(isa::kStatusWords).num(isa::kNumStatusCodes).num(isa::STW_INTERFACE);
#define SAT_IFACE_STATUS_WORD(name, index, doc) f.str(#name).num(index);
  SAT_STATUS_WORDS(SAT_IFACE_STATUS_WORD)
#undef SAT_IFACE_STATUS_WORD
  for (const TopArg& a : kTopArgs) f.str(a.name).num(static_cast<uint64_t>(a.kind)).str(a.bundle);
  return f.h;
}

}  // namespace interface_detail

inline constexpr uint32_t kInterfaceVersion =
    (kInterfaceRevision << 24) | (interface_detail::contract_hash() & 0xffffffu);

}  // namespace sat::arch
