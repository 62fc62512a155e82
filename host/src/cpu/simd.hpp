#pragma once
// The CPU kernels that exist once per SIMD path (host/src/cpu/simd.cpp, compiled by Highway for
// AVX-512, AVX2+FMA and the portable baseline, one of them chosen at run time), and the
// dispatching entry points the rest of libsat calls. Every path computes the same numbers bit
// for bit: each product term is one fused multiply-add (std::fma on the portable path), and the
// order of the terms is fixed by the callers' loops, never by the vector width.
#include <cstdint>

#include "sat/bf16.hpp"
#include "sat/arch/sgd_rule.hpp"

namespace sat::cpu::simd {

// ---- spmm_nm's register-blocked micro-kernel (the driver is host/src/cpu/spmm.cpp)

inline constexpr int kMaxLines = 6;       // the most lines a register block holds (any path)

// One micro-kernel call: a block of `lines` lines over `ng` groups of a packed input chunk whose
// rows are `panel` floats apart.
struct Tile {
  const float* buf;                       // packed input chunk (64-byte aligned)
  const float* vals[kMaxLines];           // values of each line at the chunk's first group
  const uint8_t* idx[kMaxLines];          // indices of each line at the chunk's first group
  float* out[kMaxLines];                  // output row segment of each line at the panel's column
  int64_t ng;                             // groups in the chunk
  int m, n;                               // M and entries per group
  int nr;                                 // valid lines (the others repeat the last, never stored)
  bool zero_init;                         // start from 0 instead of from out
  const char* pf;                         // input rows to prefetch during this call: first row,
  int64_t pf_ld;                          // bytes between rows,
  int64_t pf_rows;                        // number of rows,
  int pf_bytes;                           // bytes per row
};

using MicroFn = void (*)(const Tile&);

// The chosen path's blocking: `vec` floats per vector, `panel_vecs` vectors per column panel
// (the packed row stride is vec * panel_vecs floats), `lines` lines per register block; `pick`
// returns the micro-kernel for a panel of `vecs` vectors (1..panel_vecs), n entries per group and
// groups of m input rows (n = m = 1: dense lines, one row load shared by the block's lines).
// It stores vecs * vec columns of each valid line.
struct SpmmKernel {
  int vec, panel_vecs, lines;
  MicroFn (*pick)(int vecs, int n, int m);
};
SpmmKernel spmm_kernel();

// ---- pre-generation: top-N selection and compression (host/src/nm.cpp drives it)

// Selects and compresses lines [l0, l1) of a [cout][k] weight along K (along_k: line l is row l,
// `groups` groups of m) or along Cout (line l is column l), writing entries (l, g, j) of `values`
// and `index` as NMCompressed lays them out. round: BF16-round the kept values.
void nm_select_lines(const float* w, int64_t cout, int64_t k, int n, int m, bool along_k,
                     bool round, int64_t l0, int64_t l1, float* values, uint8_t* index);

// ---- the optimizer's element-wise rule over [0, n) (sat/arch/sgd_rule.hpp); mask may be null
void sgd_range(float* w, float* v, const float* g, const uint8_t* mask, int64_t n,
               const SgdHyper& h);

// ---- BF16 conversions (sat/bf16.hpp's scalar rules, vectorised per path)
void to_bf16(const float* in, bf16* out, int64_t n);
void to_f32(const bf16* in, float* out, int64_t n);
void round_bf16_inplace(float* x, int64_t n);

// ---- element-wise layer kernels on BF16 bits (host/src/layers/relu.cpp, pool.cpp)
// ReLU: out = in where in is positive (sign clear, not zero; a NaN passes, as in PyTorch), else
// +0; pos[i] = 1 where it passed (null: not kept).
void relu_forward_bf16(const bf16* in, bf16* out, uint8_t* pos, int64_t n);
// out = g where pos, else +0.
void relu_backward_bf16(const bf16* g, const uint8_t* pos, bf16* out, int64_t n);
// 2x2 max-pooling, stride 2, no padding, over `planes` planes of h x w (even or odd; the last row
// or column of an odd size is not covered). The first maximum of a window wins ties; a NaN wins
// over numbers. argmax (null: not kept) gets the winner's index within its plane.
void maxpool2x2_forward_bf16(const bf16* in, int64_t planes, int64_t h, int64_t w, bf16* out,
                             int32_t* argmax);
// Its backward: every input element gets its window's gradient where it won, else +0 (the
// windows do not overlap, so nothing is summed).
void maxpool2x2_backward_bf16(const bf16* g, const int32_t* argmax, int64_t planes, int64_t h,
                              int64_t w, bf16* out);

// ---- which path runs
const char* path_name();          // "avx512", "avx2" or "portable"
const char* available_paths();    // those this CPU and this build can run, best first, ", "-separated
// Restricts the choice to `name` (one of the above, or "best" for no restriction). False, and no
// change, where this CPU or build cannot run it.
bool force_path(const char* name);

}  // namespace sat::cpu::simd
