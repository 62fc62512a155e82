// GEMM unit: the PE array. C[i][j] (+)= sum_k A[i][k] * B[j][k] over one tile (mt x nt outputs, kt
// of K), dense or with an N:M sparse B operand.
//
// Numerics (the bit-exact contract the RTL shares): PE (i, j) holds kPeLanes FP32 lane
// accumulators, all +0 at the start of the instruction. The B line j is a sequence of entries
// e = 0, 1, ...: in dense mode entry e is B[j][e] paired with A[i][e] (E = kt entries); in N:M mode
// entry e is the kept weight value(j, e) paired with A[i][g*m + index(j, e)], g = e / n
// (E = kt/m * n entries), i.e. the PE selects activations by the weight's in-group index. Entry e
// goes to lane e % kPeLanes, and each lane adds its products (BF16 x BF16, exact in FP32) in entry
// order; lanes past E add +0. At the end the lanes reduce as a fixed tree
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) and the sum overwrites C[i][j] or, with flag b0,
// is added to it (C + sum). A NaN result is written as the canonical NaN (canonical_nan,
// sat/arch/bf16_bits.hpp), so no result depends on which NaN payload an addition passed on.
//
// Two implementations of that contract: the cycle-structured PE-array loop nest (what Vitis
// synthesises: one step of kPeLanes entries per cycle for a kPeRows x kPeCols output block), and a
// C-simulation fast path that converts the tiles to FP32 once per instruction and streams the
// entries over the rows. The tests check that both give identical bits.
#include "kernel.hpp"

namespace sat::kernel {

namespace {

bool g_reference_pe = false;

constexpr int kMaxEntries = arch::kMaxTileK;   // E <= kt <= kMaxTileK

inline float lane_tree(const float l[kLanes]) {
  static_assert(kLanes == 8, "lane_tree is written for 8 lanes");
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

using Tile = GemmTile;

// The PE array as Vitis synthesises it: for each kPeRows x kPeCols block of outputs, one pipeline
// step per kPeLanes entries; each PE row broadcasts its activation window, each PE column its
// kPeLanes weight values and indices, and every PE picks its kPeLanes activations by index.
void gemm_pe_array(Ctx& cx, const Tile& t) {
  const uint32_t steps = (t.entries + kLanes - 1) / kLanes;
PE_ROW_BLOCKS:
  for (uint32_t ib = 0; ib < t.mt; ib += arch::kPeRows) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 8
PE_COL_BLOCKS:
    for (uint32_t jb = 0; jb < t.nt; jb += arch::kPeCols) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 8
      float acc[arch::kPeRows][arch::kPeCols][kLanes];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 0
      for (int r = 0; r < arch::kPeRows; ++r)
        for (int c = 0; c < arch::kPeCols; ++c)
          for (int l = 0; l < kLanes; ++l) acc[r][c][l] = 0.0f;
PE_STEPS:
      for (uint32_t s = 0; s < steps; ++s) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 64
        // The banks' write ports are free while the array reads: a load's fill words and a store's
        // accumulator drain go on in the same cycle (no-op in C-simulation).
        bank_service(cx);
        // Column operands: kPeLanes weight values and their activation positions per PE column.
        float bval[arch::kPeCols][kLanes];
        uint32_t bpos[arch::kPeCols][kLanes];
        bool bvalid[arch::kPeCols][kLanes];
#pragma HLS ARRAY_PARTITION variable = bval complete dim = 0
#pragma HLS ARRAY_PARTITION variable = bpos complete dim = 0
#pragma HLS ARRAY_PARTITION variable = bvalid complete dim = 0
        for (int c = 0; c < arch::kPeCols; ++c) {
#pragma HLS UNROLL
          for (int l = 0; l < kLanes; ++l) {
#pragma HLS UNROLL
            const uint32_t e = s * kLanes + l, j = jb + c;
            const bool valid = e < t.entries && j < t.nt;
            const uint32_t pos = !valid ? 0 : t.sparse ? (e / t.n) * t.m + t.bidx[j * t.entries + e] : e;
            bvalid[c][l] = valid;
            bpos[c][l] = pos;
            bval[c][l] = valid ? bf16_bits_to_f32(t.b[j * t.entries + e]) : 0.0f;
          }
        }
        for (int r = 0; r < arch::kPeRows; ++r) {
#pragma HLS UNROLL
          const uint32_t i = ib + r;
          for (int c = 0; c < arch::kPeCols; ++c) {
#pragma HLS UNROLL
            for (int l = 0; l < kLanes; ++l) {
#pragma HLS UNROLL
              const float a = (i < t.mt && bvalid[c][l]) ? bf16_bits_to_f32(t.a[i * t.kt + bpos[c][l]]) : 0.0f;
              acc[r][c][l] += a * bval[c][l];
            }
          }
        }
      }
PE_DRAIN:
      for (int r = 0; r < arch::kPeRows; ++r) {
        for (int c = 0; c < arch::kPeCols; ++c) {
#pragma HLS PIPELINE II = 1
          bank_service(cx);
          const uint32_t i = ib + r, j = jb + c;
          if (i >= t.mt || j >= t.nt) continue;
          const float sum = lane_tree(acc[r][c]);
          float& out = t.c[i * t.nt + j];
          out = canonical_nan(t.accumulate ? out + sum : sum);
        }
      }
    }
  }
}

#ifndef __SYNTHESIS__
// C-simulation fast path, same bits: A converted once to FP32 and transposed to [kt + 1][mt] (row kt
// is zeros, the partner of the +0 padding entries); then per output column j the entry list
// (activation row, value) is streamed over all mt rows, lane e % kPeLanes accumulating.
void gemm_fast(const Tile& t) {
  static float at[(arch::kMaxTileK + 1) * arch::kMaxTileRows];
  static float acc[kLanes][arch::kMaxTileRows];
  static uint32_t pos[kMaxEntries + kLanes];
  static float val[kMaxEntries + kLanes];
  const uint32_t mt = t.mt, kt = t.kt;
  for (uint32_t i = 0; i < mt; ++i) {
    const uint16_t* ar = t.a + i * kt;
    for (uint32_t k = 0; k < kt; ++k) at[k * mt + i] = bf16_bits_to_f32(ar[k]);
  }
  for (uint32_t i = 0; i < mt; ++i) at[kt * mt + i] = 0.0f;
  const uint32_t padded = (t.entries + kLanes - 1) / kLanes * kLanes;
  for (uint32_t j = 0; j < t.nt; ++j) {
    const uint16_t* bv = t.b + j * t.entries;
    for (uint32_t e = 0; e < t.entries; ++e) {
      pos[e] = t.sparse ? (e / t.n) * t.m + t.bidx[j * t.entries + e] : e;
      val[e] = bf16_bits_to_f32(bv[e]);
    }
    for (uint32_t e = t.entries; e < padded; ++e) {
      pos[e] = kt;
      val[e] = 0.0f;
    }
    for (int l = 0; l < kLanes; ++l)
      for (uint32_t i = 0; i < mt; ++i) acc[l][i] = 0.0f;
    for (uint32_t e = 0; e < padded; ++e) {
      float* __restrict al = acc[e % kLanes];
      const float* __restrict col = at + pos[e] * mt;
      const float v = val[e];
      for (uint32_t i = 0; i < mt; ++i) al[i] += col[i] * v;
    }
    float* cj = t.c + j;
    for (uint32_t i = 0; i < mt; ++i) {
      const float l[kLanes] = {acc[0][i], acc[1][i], acc[2][i], acc[3][i],
                               acc[4][i], acc[5][i], acc[6][i], acc[7][i]};
      const float sum = lane_tree(l);
      float& out = cj[i * t.nt];
      out = canonical_nan(t.accumulate ? out + sum : sum);
    }
  }
}
#endif

}  // namespace

void set_reference_pe(bool on) { g_reference_pe = on; }

bool gemm_tile(Ctx& cx, const Insn& in, GemmTile& t) {
  namespace f = isa::f_GEMM;
  if (in.opcode() != isa::OP_GEMM) return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  t.sparse = in.flag(1);
  t.accumulate = in.flag(0);
  t.mt = in[f::mt];
  t.nt = in[f::nt];
  t.kt = in[f::kt];
  t.n = in[f::n];
  t.m = in[f::m];
  if (in[f::a_bank] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, f::a_bank, arch::kBanks);
  if (in[f::b_bank] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, f::b_bank, arch::kBanks);
  if (in[f::c_bank] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, f::c_bank, arch::kBanks);
  if (t.mt == 0 || t.mt > static_cast<uint32_t>(arch::kMaxTileRows)) return cx.bad_field(in, f::mt, arch::kMaxTileRows);
  if (t.nt == 0 || t.nt > static_cast<uint32_t>(arch::kMaxTileCols)) return cx.bad_field(in, f::nt, arch::kMaxTileCols);
  if (t.kt == 0 || t.kt > static_cast<uint32_t>(arch::kMaxTileK)) return cx.bad_field(in, f::kt, arch::kMaxTileK);
  if (t.sparse) {
    if (!arch::supported_m(static_cast<int>(t.m))) return cx.bad_field(in, f::m);
    if (t.n == 0 || t.n > t.m) return cx.bad_field(in, f::n, t.m);
    if (t.kt % t.m != 0) return cx.bad_field(in, f::kt, t.m);
    t.entries = t.kt / t.m * t.n;
  } else {
    t.entries = t.kt;
  }
  Buffers& banks = gemm_banks(cx);
  t.a = banks.a[in[f::a_bank]];
  t.b = banks.b[in[f::b_bank]];
  t.bidx = banks.bidx[in[f::b_bank]];
  t.c = banks.c[in[f::c_bank]];
  return true;
}

bool exec_gemm(Ctx& cx, const Insn& in) {
  Tile t;
  if (!gemm_tile(cx, in, t)) return false;
#ifndef __SYNTHESIS__
  if (!g_reference_pe) {
    gemm_fast(t);
    return true;
  }
#endif
  gemm_pe_array(cx, t);
  return true;
}

}  // namespace sat::kernel
