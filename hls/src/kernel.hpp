#pragma once
// Internal declarations of the SAT kernel: the on-chip state, the DRAM view, the error record and
// the per-unit execute functions. Synthesizable style: fixed-size arrays, no allocation, no
// recursion, no STL; C++17. Semantics of every instruction: docs/isa.md.
#include <cstdint>

#include "hls_types.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/interface.hpp"
#include "sat/arch/access.hpp"   // isa::ConvPatch: what the patch buffer holds
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"
#include "sat/arch/bf16_bits.hpp"
#include "sat/arch/nm_select.hpp"
#include "sat_hls/gemm_tile.hpp"

namespace sat::kernel {

using isa::Insn;

inline constexpr int kLanes = arch::kPeLanes;
inline constexpr int kMaxM = arch::kSupportedM[arch::kNumSupportedM - 1];

// ---- Status record ----------------------------------------------------------------------------
// The status words are laid out in sat/arch/status.hpp; docs/isa.md lists what VALUE and DETAIL
// hold for each code.
using isa::kNoOpcode;

struct Error {
  uint32_t code = isa::STATUS_OK;
  uint32_t field = 0;
  uint32_t value = 0;
  uint32_t extra = 0;
};

// ---- DRAM ---------------------------------------------------------------------------------------
// The four channels as halfword arrays and their sizes in halfwords (the s_axilite scalars of the
// top function). A real build uses 512-bit ports (arch::kDdrBusBits) with burst width converters;
// the C-simulation reads halfwords, the ISA's address unit. In the synthesised kernel only the
// channel arbiters hold the m_axi pointers; a unit keeps the sizes for its bounds checks.
struct Ddr {
#ifndef __SYNTHESIS__
  uint16_t* gmem[arch::kDdrChannels];
#endif
  uint64_t halfwords[arch::kDdrChannels];
};

// ---- On-chip buffers ----------------------------------------------------------------------------
// A and B operand banks hold BF16 bits; a sparse B bank holds values and, at the same positions, the
// 4-bit in-group indices (one byte each here; 4 bits in hardware). C banks hold FP32 accumulators.
// Layouts (compact, pitch = the tile's column count): A [rows][cols], dense B [rows][cols], sparse B
// values/indices [rows][groups * n], C [mt][nt].
// In the synthesised kernel the arrays are declared (and partitioned) in the GEMM process that owns
// them, and Buffers only names them.
#ifdef __SYNTHESIS__
struct Buffers {
  uint16_t (&a)[arch::kBanks][arch::kAbufElems];
  uint16_t (&b)[arch::kBanks][arch::kBbufElems];
  uint8_t (&bidx)[arch::kBanks][arch::kBbufElems];
  float (&c)[arch::kBanks][arch::kCbufElems];
};
#else
struct Buffers {
  uint16_t a[arch::kBanks][arch::kAbufElems];
  uint16_t b[arch::kBanks][arch::kBbufElems];
  uint8_t bidx[arch::kBanks][arch::kBbufElems];
  float c[arch::kBanks][arch::kCbufElems];
};
#endif

// ---- How a unit reaches DRAM and the banks ------------------------------------------------------
// The execute functions name these types, never the storage behind them, so that both ways of
// running the kernel use the same functions (docs/hls-dataflow.md):
//  - C-simulation: plain pointers into the host's channel memories and into one Buffers;
//  - synthesis: handles on the process's streams (hls/src/links.hpp): DRAM through the channel's
//    arbiter, bank writes as fill words to the GEMM process that owns the banks, accumulators as
//    a drain stream from it.
#ifdef __SYNTHESIS__
}  // namespace sat::kernel
#include "links.hpp"
namespace sat::kernel {
#else
using DdrIn = const uint16_t*;   // a DRAM region a unit reads
using DdrOut = uint16_t*;        // a DRAM region a unit writes (and may read back)
using BankOut = uint16_t*;       // an A or B operand bank, as the load unit fills it
using IdxOut = uint8_t*;         // a B bank's in-group indices, as the load unit fills them
using CTileIn = const float*;    // a C bank, as the store unit reads it: each element once, in order

// Sequential DRAM access: a reader yields the n halfwords from p in order, a writer takes them.
// Here pointer walks; in synthesis they issue one burst request per run of consecutive halfwords
// on their own data link (kSlot, 1 up to kDdrReadSlots / kDdrWriteSlots - 1) and keep several in
// flight (links.hpp). A unit reaches a region through one or the other wherever it walks it in
// order, and through DdrIn/DdrOut indexing only where it does not (docs/hls-dataflow.md).
template <int kSlot>
class DdrReader {
  static_assert(kSlot > 0 && kSlot < arch::kDdrReadSlots, "slot 0 is for single accesses");

 public:
  DdrReader(DdrIn p, uint64_t) : p_(p) {}
  uint16_t next() { return *p_++; }

 private:
  const uint16_t* p_;
};
template <int kSlot>
class DdrWriter {
  static_assert(kSlot > 0 && kSlot < arch::kDdrWriteSlots, "slot 0 is for single accesses");

 public:
  DdrWriter(DdrOut p, uint64_t) : p_(p) {}
  void put(uint16_t v) { *p_++ = v; }

 private:
  uint16_t* p_;
};
#endif

// The load unit's convolution patch buffer and what it holds (LD_CONV, docs/isa.md): the input
// pixels and channels of the last patch read, and the tensor's address. LD_CONV b3 builds its tile
// from it without reading DRAM when it holds exactly that tile's patch. One per load engine in the
// synthesised kernel (each engine's process declares its own); one in C-simulation, where the loads
// run one at a time in stream order.
struct PatchBuffer {
  uint16_t data[arch::kConvPatchElems];
  bool valid;
  uint32_t addr;
  isa::ConvPatch extent;
};

// The run's counters that the units keep (status words 11-15): what the executed instructions did,
// by the contract's definitions (arch::gemm_cycles, isa::dram_accesses), so that every target that
// runs the unit functions counts the same for the same instructions. Cycles are the clock's, not
// the units': the collector counts them in the synthesised kernel (top.cpp).
struct Counts {
  uint64_t gemm_cycles = 0;
  uint64_t dram_read = 0, dram_write = 0;   // bytes

  void add(const Counts& o) {
    gemm_cycles += o.gemm_cycles;
    dram_read += o.dram_read;
    dram_write += o.dram_write;
  }
};

// Everything a unit needs to execute one instruction.
struct Ctx {
  Ddr ddr;
  PatchBuffer* patch = nullptr;   // load unit: its patch buffer
#ifdef __SYNTHESIS__
  LoadView* buf = nullptr;    // load engines: the banks as fill words (the name LD_CONV uses)
  Buffers* own = nullptr;     // the GEMM process: the banks it owns
  Client* client = nullptr;   // this process's arbiter and drain links
  BankOwner* owner = nullptr; // the GEMM process: what serves fills and drains between its cycles
#else
  Buffers* buf;
#endif
  Error err;
  uint32_t nonfinite = 0;   // status[3]
  Counts count;             // status[11..15]

  bool failed() const { return err.code != isa::STATUS_OK; }
  // Records the first error; always returns false so that callers can `return cx.fail(...)`.
  bool fail(uint32_t code, uint32_t field, uint32_t value, uint32_t extra = 0) {
    if (err.code == isa::STATUS_OK) {
      err.code = code;
      err.field = field;
      err.value = value;
      err.extra = extra;
    }
    return false;
  }
  bool bad_field(const Insn& in, int field, uint32_t extra = 0) {
    return fail(isa::STATUS_BAD_FIELD, static_cast<uint32_t>(field), in[field], extra);
  }
};

// The `halfwords` halfwords at the DRAM address in word `field` of `in`, checked against the channel
// size; null (error recorded: STATUS_BAD_ADDRESS) when the range leaves the channel's buffer.
DdrOut region(Ctx& cx, const Insn& in, int field, uint64_t halfwords);

// The GEMM unit's banks; a C bank as the store unit drains it (rows x cols, row-major, each element
// read once in that order); one cycle of the bank owner's fill and drain service (a no-op in
// C-simulation, where nothing runs concurrently).
#ifdef __SYNTHESIS__
Buffers& gemm_banks(Ctx& cx);
CTileIn c_tile(Ctx& cx, uint32_t bank, uint32_t rows, uint32_t cols);
void bank_service(Ctx& cx);
#else
inline Buffers& gemm_banks(Ctx& cx) { return *cx.buf; }
inline CTileIn c_tile(Ctx& cx, uint32_t bank, uint32_t, uint32_t) { return cx.buf->c[bank]; }
inline void bank_service(Ctx&) {}
#endif

// ---- Element access ---------------------------------------------------------------------------
// FP32 and int32 take two halfwords, low half first (little-endian, as the host writes them).
// P is a DRAM region (DdrIn, DdrOut) or any pointer to halfwords.
template <typename P>
inline float ld_bf16(const P& p, uint64_t i) { return bf16_bits_to_f32(static_cast<uint16_t>(p[i])); }
template <typename P>
inline void st_bf16(const P& p, uint64_t i, float f) { p[i] = f32_to_bf16_bits(f); }
template <typename P>
inline uint32_t ld_u32(const P& p, uint64_t i) {
  return static_cast<uint32_t>(static_cast<uint16_t>(p[2 * i])) |
         (static_cast<uint32_t>(static_cast<uint16_t>(p[2 * i + 1])) << 16);
}
template <typename P>
inline void st_u32(const P& p, uint64_t i, uint32_t v) {
  p[2 * i] = static_cast<uint16_t>(v & 0xffffu);
  p[2 * i + 1] = static_cast<uint16_t>(v >> 16);
}
template <typename P>
inline float ld_f32(const P& p, uint64_t i) { return f32_from_bits(ld_u32(p, i)); }
template <typename P>
inline void st_f32(const P& p, uint64_t i, float f) { st_u32(p, i, f32_bits(f)); }
inline float field_f32(const Insn& in, int field) { return f32_from_bits(in[field]); }
// The same on a DdrReader / DdrWriter: the next element in order (two halfwords, low first, for
// FP32; the halves are read in that order, as two statements).
template <typename R>
inline float next_bf16(R& r) { return bf16_bits_to_f32(r.next()); }
template <typename R>
inline uint32_t next_u32(R& r) {
  const uint32_t lo = r.next();
  const uint32_t hi = r.next();
  return lo | hi << 16;
}
template <typename R>
inline float next_f32(R& r) { return f32_from_bits(next_u32(r)); }
template <typename W>
inline void put_bf16(W& w, float f) { w.put(f32_to_bf16_bits(f)); }
template <typename W>
inline void put_f32(W& w, float f) {
  const uint32_t b = f32_bits(f);
  w.put(static_cast<uint16_t>(b & 0xffffu));
  w.put(static_cast<uint16_t>(b >> 16));
}

// The 4-bit entries [e0, e0 + n) of a packed index region (four a halfword, low nibble first), in
// order, each halfword read once.
template <int kSlot>
class NibbleReader {
 public:
  NibbleReader(DdrIn idx, uint64_t e0, uint64_t n)
      : r_(idx + (e0 >> 2), n == 0 ? 0 : ((e0 + n - 1) >> 2) - (e0 >> 2) + 1), sh_(4 * static_cast<uint32_t>(e0 & 3)) {}
  uint32_t next() {
    if (!have_) {
      word_ = r_.next();
      have_ = true;
    }
    const uint32_t v = (static_cast<uint32_t>(word_) >> sh_) & 0xfu;
    sh_ += 4;
    if (sh_ == 16) {
      sh_ = 0;
      have_ = false;
    }
    return v;
  }

 private:
  DdrReader<kSlot> r_;
  uint32_t sh_;
  bool have_ = false;
  uint16_t word_ = 0;
};

// ---- N:M selection --------------------------------------------------------------------------------
// Keep mask of one group v[0..m) under the shared rule (sat/nm_select.hpp), with m fixed at compile
// time per supported M; all m bits when n >= m. Used by PGEN and by the on-the-fly LD_SPW.
template <int kM>
inline uint32_t nm_keep_mask_fixed(const float* v, uint32_t n) {
  uint32_t keep;
  nm_keep_masks<kM, 1>(v, 1, 0, kM, static_cast<int>(n), &keep);
  return keep;
}
inline uint32_t nm_keep_mask(const float* v, uint32_t m, uint32_t n) {
  if (n >= m) return m >= 32 ? ~0u : (1u << m) - 1;
  switch (m) {
    case 2: return nm_keep_mask_fixed<2>(v, n);
    case 4: return nm_keep_mask_fixed<4>(v, n);
    case 8: return nm_keep_mask_fixed<8>(v, n);
    default: return nm_keep_mask_fixed<16>(v, n);
  }
}
static_assert(arch::kSupportedM[0] == 2 && arch::kSupportedM[1] == 4 && arch::kSupportedM[2] == 8 &&
                  arch::kSupportedM[3] == 16,
              "nm_keep_mask dispatches on the supported M set of config.hpp");

// Window geometry of LD_CONV, ST_COL2IM, V_POOL, V_POOL_BWD (fields c h w kh_kw stride_pad oh ow).
struct ConvGeom {
  uint32_t c, h, w, kh, kw, stride, pad, oh, ow;
};
// Decodes the geometry starting at field `c_field`; records BAD_FIELD and returns false when a
// dimension is 0, the stride is 0, or the padding is not smaller than the kernel.
bool decode_geom(Ctx& cx, const Insn& in, int c_field, ConvGeom& g);

// ---- Fetch/decode and the status block (top.cpp) --------------------------------------------------
// Checks a fetched instruction's header: known opcode, masks naming only units with token queues,
// FINISH without masks. Returns the unit, or -1 after recording the error.
int check_header(Ctx& cx, const Insn& in);
// Executes one instruction on `unit` (the switch over the exec_* functions below) and counts it.
bool exec_unit(int unit, Ctx& cx, const Insn& in);
// Adds an executed instruction to cx.count (exec_unit does; the load engines, which call exec_load
// directly, and the simulator's RTL GEMM path call it themselves).
void count_executed(Ctx& cx, const Insn& in);
// The status block of a run that ended at instruction `index` (sat/arch/status.hpp); `cycles`: the
// kernel clock's count of the run, 0 where there is no clock (C-simulation).
void write_status(uint32_t status[isa::kStatusWords], const Ctx& cx, uint32_t index, uint32_t opcode,
                  uint32_t executed, uint64_t cycles);

// ---- Units: each executes one instruction; false after recording an error --------------------------
bool exec_load(Ctx& cx, const Insn& in);
bool exec_gemm(Ctx& cx, const Insn& in);
// The GEMM instruction's checks and its tile (shape, bank operands), as exec_gemm computes it;
// false after recording the error.
bool gemm_tile(Ctx& cx, const Insn& in, GemmTile& t);
bool exec_store(Ctx& cx, const Insn& in);
bool exec_vec(Ctx& cx, const Insn& in);
bool exec_upd(Ctx& cx, const Insn& in);
bool exec_pgen(Ctx& cx, const Insn& in);

// C-simulation hook: run the GEMM unit through the cycle-structured PE-array loop nest (the code
// Vitis synthesises) instead of the fast C-simulation path. Both give identical bits; the tests
// check that.
void set_reference_pe(bool on);

#ifndef __SYNTHESIS__
// C-simulation hook of the host wrapper: a run whose `should_stop` returns true (asked every few
// scheduler rounds) ends where it is, with the status of what ran so far, and csim_stopped()
// says so. Null: run to the end.
void csim_set_stop(bool (*should_stop)(void*), void* arg);
bool csim_stopped();
#endif

}  // namespace sat::kernel

// ---- The top function (synthesis top: sat_top) ----------------------------------------------------
// insns: the instruction stream, one 512-bit word per instruction, `count` of them.
// gmem0..gmem3: the four DDR channels (halfword view), halfwords0..3 their sizes.
// status: isa::kStatusWords words (see above).
extern "C" void sat_top(const ap_uint<512>* insns, uint32_t count, uint16_t* gmem0, uint16_t* gmem1,
                        uint16_t* gmem2, uint16_t* gmem3, uint64_t halfwords0, uint64_t halfwords1,
                        uint64_t halfwords2, uint64_t halfwords3,
                        uint32_t status[sat::isa::kStatusWords]);
