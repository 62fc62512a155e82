#pragma once
// The SAT instruction set: units, opcodes, and the binary encoding of every instruction. Defined
// once, here, as X-macro tables; the HLS kernel decodes with the field indices generated below, the
// host scheduler encodes with them, and the disassembler prints with the generated names. Field
// semantics: docs/isa.md. Dependency-free so that Vitis HLS, g++ and nvcc include it unchanged.
//
// Encoding: an instruction is kInsnWords (16) little-endian 32-bit words, 512 bits, one AXI beat.
//   word 0: bits 0-7 opcode, 8-15 wait mask, 16-23 signal mask, 24-31 flags (per opcode)
//   words 1..15: the opcode's fields, in the order listed in SAT_ISA_FIELDS_<OPCODE>; unused words 0.
// Wait/signal masks have one bit per unit (Unit below): before executing, an instruction pops one
// token from the queue (producer -> this unit) of every unit in its wait mask; after executing it
// pushes one token into the queue (this unit -> consumer) of every unit in its signal mask.
// DRAM addresses: bits 31-30 the channel, bits 29-0 the offset in 2-byte units (config.hpp).
#include <cstdint>

#include "sat/arch/config.hpp"
#include "sat/arch/status.hpp"

namespace sat::isa {

// ---- Units ----------------------------------------------------------------------------------------
#define SAT_ISA_UNITS(X)                                                                      \
  X(LOAD, 0, "DRAM -> operand buffers (strided, convolution-window, compressed weights)")     \
  X(GEMM, 1, "the PE array: dense and N:M tile products into the accumulators")              \
  X(VEC, 2, "vector unit: element-wise, pooling, normalisation, softmax, loss (DRAM -> DRAM)") \
  X(STORE, 3, "accumulators -> DRAM (BF16 or FP32, bias, accumulate, col2im)")                \
  X(UPD, 4, "update unit: SGD momentum, weight decay, SR-STE (DRAM -> DRAM)")                 \
  X(PGEN, 5, "pre-generation unit: N:M top-N selection and compression (DRAM -> DRAM)")       \
  X(CTRL, 6, "fetch/decode: finish")

enum Unit : uint8_t {
#define SAT_ISA_UNIT_ENUM(name, id, doc) UNIT_##name = id,
  SAT_ISA_UNITS(SAT_ISA_UNIT_ENUM)
#undef SAT_ISA_UNIT_ENUM
};
inline constexpr int kNumUnits = 7;
inline constexpr int kNumExecUnits = 6;   // units with token queues (CTRL has none)

// ---- Opcodes: name, code, unit, flag bits (documentation string) ---------------------------------
#define SAT_ISA_OPCODES(X)                                                                              \
  X(LD_2D, 0x01, LOAD, "b0: dst B buffer (else A)")                                                     \
  X(LD_CONV, 0x02, LOAD, "b0: dst B buffer (else A); b1: transposed ([k][p] instead of [p][k]); b2: tap-major, flipped window; b3: patch held")        \
  X(LD_SPW, 0x03, LOAD, "b0: select on the fly from the FP32 master (val_addr: W[cout][k], idx_addr: k); b1: groups along Cout (W_B, else K: W_F), needs b0") \
  X(GEMM, 0x10, GEMM, "b0: accumulate into C (else overwrite); b1: sparse N:M B operand")               \
  X(ST_2D, 0x20, STORE, "b0: FP32 out (else BF16 RNE); b1: add into DRAM (FP32 only); b2: add bias; b3: rows in lines (row0, line_rows, line_stride); b4: zeros (C not read)") \
  X(ST_COL2IM, 0x21, STORE, "-")                                                                        \
  X(V_FILL, 0x30, VEC, "b0: FP32 (else BF16)")                                                          \
  X(V_CONVERT, 0x31, VEC, "-")                                                                          \
  X(V_ADD, 0x32, VEC, "b0: a FP32; b1: b FP32; b2: y FP32 (else BF16)")                                 \
  X(V_BCAST_ADD, 0x33, VEC, "-")                                                                        \
  X(V_COLSUM, 0x34, VEC, "b0: add into y (else overwrite)")                                             \
  X(V_RELU, 0x35, VEC, "-")                                                                             \
  X(V_RELU_BWD, 0x36, VEC, "-")                                                                         \
  X(V_GELU, 0x37, VEC, "b0: tanh approximation (else erf)")                                             \
  X(V_GELU_BWD, 0x38, VEC, "b0: tanh approximation (else erf)")                                         \
  X(V_POOL, 0x39, VEC, "b0: average (else max)")                                                        \
  X(V_POOL_BWD, 0x3a, VEC, "b0: average (else max)")                                                    \
  X(V_BN, 0x3b, VEC, "b0: training (batch statistics, running update; else running statistics); b1: ReLU of y, its bit mask to `mask`") \
  X(V_BN_BWD, 0x3c, VEC, "b0: dy masked by the bit mask of a ReLU fused into V_BN (`mask`)")           \
  X(V_LN, 0x3d, VEC, "-")                                                                               \
  X(V_LN_BWD, 0x3e, VEC, "-")                                                                           \
  X(V_SOFTMAX, 0x3f, VEC, "-")                                                                          \
  X(V_SOFTMAX_BWD, 0x40, VEC, "-")                                                                      \
  X(V_XENT, 0x41, VEC, "b0: write dlogits")                                                             \
  X(V_PERMUTE, 0x42, VEC, "-")                                                                          \
  X(SGD, 0x50, UPD, "b0: weight decay; b1: SR-STE term on weights FF prunes")                          \
  X(PGEN, 0x60, PGEN, "b0: along Cout (else K); b1: compressed; b2: masked dense; b3: transposed; b4: + W_B") \
  X(FINISH, 0x7f, CTRL, "-")

enum Opcode : uint8_t {
#define SAT_ISA_OPCODE_ENUM(name, code, unit, flags) OP_##name = code,
  SAT_ISA_OPCODES(SAT_ISA_OPCODE_ENUM)
#undef SAT_ISA_OPCODE_ENUM
};

// ---- Fields of each opcode, in word order from word 1 ---------------------------------------------
// Element counts and strides are in elements; "addr" fields are DRAM addresses (see above); banks
// and tile sizes refer to the on-chip buffers of config.hpp. Packed fields hold two 16-bit values,
// low half first (e.g. kh_kw = kh | kw << 16). Float fields hold the IEEE-754 bits.
#define SAT_ISA_FIELDS_LD_2D(F) F(bank) F(rows) F(cols) F(addr) F(row_stride) F(col_stride)
#define SAT_ISA_FIELDS_LD_CONV(F) \
  F(bank) F(rows) F(cols) F(addr) F(p0) F(k0) F(c) F(h) F(w) F(kh_kw) F(stride_pad) F(oh) F(ow)
#define SAT_ISA_FIELDS_LD_SPW(F) \
  F(bank) F(rows) F(groups) F(n) F(m) F(val_addr) F(idx_addr) F(line_groups) F(l0) F(g0)
#define SAT_ISA_FIELDS_GEMM(F) F(a_bank) F(b_bank) F(c_bank) F(mt) F(nt) F(kt) F(n) F(m)
#define SAT_ISA_FIELDS_ST_2D(F) \
  F(c_bank) F(rows) F(cols) F(addr) F(row_stride) F(col_stride) F(bias_addr) F(row0) F(line_rows) F(line_stride)
#define SAT_ISA_FIELDS_ST_COL2IM(F) \
  F(c_bank) F(rows) F(cols) F(addr) F(p0) F(k0) F(c) F(h) F(w) F(kh_kw) F(stride_pad) F(oh) F(ow)
#define SAT_ISA_FIELDS_V_FILL(F) F(y) F(count) F(value)
#define SAT_ISA_FIELDS_V_CONVERT(F) F(x) F(y) F(count)
#define SAT_ISA_FIELDS_V_ADD(F) F(a) F(b) F(y) F(count)
#define SAT_ISA_FIELDS_V_BCAST_ADD(F) F(x) F(p) F(y) F(rows) F(cols)
#define SAT_ISA_FIELDS_V_COLSUM(F) F(x) F(y) F(rows) F(cols)
#define SAT_ISA_FIELDS_V_RELU(F) F(x) F(y) F(count)
#define SAT_ISA_FIELDS_V_RELU_BWD(F) F(x) F(dy) F(dx) F(count)
#define SAT_ISA_FIELDS_V_GELU(F) F(x) F(y) F(count)
#define SAT_ISA_FIELDS_V_GELU_BWD(F) F(x) F(dy) F(dx) F(count)
#define SAT_ISA_FIELDS_V_POOL(F) F(x) F(y) F(b) F(c) F(h) F(w) F(kh_kw) F(stride_pad) F(oh) F(ow)
#define SAT_ISA_FIELDS_V_POOL_BWD(F) \
  F(x) F(dy) F(dx) F(b) F(c) F(h) F(w) F(kh_kw) F(stride_pad) F(oh) F(ow)
#define SAT_ISA_FIELDS_V_BN(F) \
  F(x) F(y) F(gamma) F(beta) F(mean) F(rstd) F(run_mean) F(run_var) F(rows) F(c) F(eps) F(momentum) F(mask)
#define SAT_ISA_FIELDS_V_BN_BWD(F) \
  F(x) F(dy) F(dx) F(gamma) F(dgamma) F(dbeta) F(mean) F(rstd) F(rows) F(c) F(mask)
#define SAT_ISA_FIELDS_V_LN(F) F(x) F(y) F(gamma) F(beta) F(mean) F(rstd) F(rows) F(d) F(eps)
#define SAT_ISA_FIELDS_V_LN_BWD(F) \
  F(x) F(dy) F(dx) F(gamma) F(dgamma) F(dbeta) F(mean) F(rstd) F(rows) F(d)
#define SAT_ISA_FIELDS_V_SOFTMAX(F) F(x) F(y) F(rows) F(cols) F(scale)
#define SAT_ISA_FIELDS_V_SOFTMAX_BWD(F) F(y) F(dy) F(dx) F(rows) F(cols) F(scale)
#define SAT_ISA_FIELDS_V_XENT(F) F(logits) F(labels) F(dlogits) F(out) F(rows) F(classes)
#define SAT_ISA_FIELDS_V_PERMUTE(F) F(x) F(y) F(outer) F(rows) F(cols)
#define SAT_ISA_FIELDS_SGD(F) F(w) F(v) F(g) F(count) F(hyper) F(idx_addr) F(n) F(m) F(k)
#define SAT_ISA_FIELDS_PGEN(F) \
  F(w) F(val_addr) F(idx_addr) F(dense_addr) F(cout) F(k) F(n) F(m) F(dense_t_addr) F(val_b_addr) F(idx_b_addr)
#define SAT_ISA_FIELDS_FINISH(F)

// One namespace per opcode holding its field indices (word numbers), e.g. isa::f_GEMM::kt == 6.
#define SAT_ISA_FIELD_INDEX(name) name,
#define SAT_ISA_FIELD_NS(op, code, unit, flags) \
  namespace f_##op {                            \
  enum : int { header_ = 0, SAT_ISA_FIELDS_##op(SAT_ISA_FIELD_INDEX) count_ }; \
  }
SAT_ISA_OPCODES(SAT_ISA_FIELD_NS)
#undef SAT_ISA_FIELD_NS
#undef SAT_ISA_FIELD_INDEX

// ---- The instruction word -------------------------------------------------------------------------
struct Insn {
  uint32_t w[arch::kInsnWords];

  uint8_t opcode() const { return static_cast<uint8_t>(w[0] & 0xff); }
  uint8_t wait() const { return static_cast<uint8_t>((w[0] >> 8) & 0xff); }
  uint8_t signal() const { return static_cast<uint8_t>((w[0] >> 16) & 0xff); }
  uint8_t flags() const { return static_cast<uint8_t>((w[0] >> 24) & 0xff); }
  bool flag(int bit) const { return (flags() >> bit) & 1u; }
  uint32_t operator[](int field) const { return w[field]; }
};

inline Insn make_insn(Opcode op, uint8_t flags = 0) {
  Insn in{};
  in.w[0] = static_cast<uint32_t>(op) | (static_cast<uint32_t>(flags) << 24);
  return in;
}
inline void set_wait(Insn& in, uint8_t mask) { in.w[0] = (in.w[0] & ~0xff00u) | (uint32_t{mask} << 8); }
inline void set_signal(Insn& in, uint8_t mask) {
  in.w[0] = (in.w[0] & ~0xff0000u) | (uint32_t{mask} << 16);
}
inline uint32_t pack16(uint32_t lo, uint32_t hi) { return (lo & 0xffffu) | (hi << 16); }
inline uint32_t lo16(uint32_t v) { return v & 0xffffu; }
inline uint32_t hi16(uint32_t v) { return v >> 16; }

// DRAM addresses.
inline constexpr uint32_t make_addr(uint32_t channel, uint32_t halfword_offset) {
  return (channel << arch::kAddrChannelShift) | halfword_offset;
}
inline constexpr uint32_t addr_channel(uint32_t a) { return a >> arch::kAddrChannelShift; }
inline constexpr uint32_t addr_offset(uint32_t a) { return a & ((1u << arch::kAddrChannelShift) - 1); }

// The unit an opcode runs on, and its number of fields; -1 / 0 for an unknown opcode.
inline int opcode_unit(uint8_t op) {
  switch (op) {
#define SAT_ISA_OPCODE_UNIT(name, code, unit, flags) \
  case OP_##name:                                    \
    return UNIT_##unit;
    SAT_ISA_OPCODES(SAT_ISA_OPCODE_UNIT)
#undef SAT_ISA_OPCODE_UNIT
    default:
      return -1;
  }
}
inline int opcode_fields(uint8_t op) {
  switch (op) {
#define SAT_ISA_OPCODE_NFIELDS(name, code, unit, flags) \
  case OP_##name:                                       \
    return f_##name::count_ - 1;
    SAT_ISA_OPCODES(SAT_ISA_OPCODE_NFIELDS)
#undef SAT_ISA_OPCODE_NFIELDS
    default:
      return 0;
  }
}

// Names, for the disassembler and error messages.
inline const char* opcode_name(uint8_t op) {
  switch (op) {
#define SAT_ISA_OPCODE_NAME(name, code, unit, flags) \
  case OP_##name:                                    \
    return #name;
    SAT_ISA_OPCODES(SAT_ISA_OPCODE_NAME)
#undef SAT_ISA_OPCODE_NAME
    default:
      return "?";
  }
}
inline const char* unit_name(int unit) {
  switch (unit) {
#define SAT_ISA_UNIT_NAME(name, id, doc) \
  case id:                               \
    return #name;
    SAT_ISA_UNITS(SAT_ISA_UNIT_NAME)
#undef SAT_ISA_UNIT_NAME
    default:
      return "?";
  }
}
// Name of field `index` (1-based word number) of `op`; null past its last field.
inline const char* field_name(uint8_t op, int index) {
#define SAT_ISA_FIELD_STR(name) #name,
  switch (op) {
#define SAT_ISA_OPCODE_FIELDS(name, code, unit, flags)                          \
  case OP_##name: {                                                              \
    static const char* const names[] = {"header", SAT_ISA_FIELDS_##name(SAT_ISA_FIELD_STR) nullptr}; \
    return index >= 1 && index < f_##name::count_ ? names[index] : nullptr;     \
  }
    SAT_ISA_OPCODES(SAT_ISA_OPCODE_FIELDS)
#undef SAT_ISA_OPCODE_FIELDS
    default:
      return nullptr;
  }
#undef SAT_ISA_FIELD_STR
}

}  // namespace sat::isa
