#pragma once
// The CPU backend's matrix products. Dense products go through oneDNN; the N:M products through
// spmm_nm, the project's own multithreaded kernel that touches only the kept weights, on the SIMD
// path chosen at run time.
#include <cstdint>
#include <string>

#include "sat/nm.hpp"

namespace sat::cpu {

// C = alpha * op(A) * op(B) + beta * C, row-major FP32 (oneDNN's sgemm, on libsat's OpenMP
// threads; FP32 accumulation, deterministic for a given thread count).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

// Sparse x dense product over the lines of a compressed weight (see NMCompressed):
//   out[l][p] (+)= sum_{g, j} value(l, g, j) * in[g * M + index(l, g, j)][p]
// for l < w.lines(), p < cols. `in` has w.line_length() rows. FP32 accumulation.
//   Axis::K form (W_F):    in = X^T  [K][P],    out = Y^T  [Cout][P]   (FF)
//   Axis::Cout form (W_B): in = dY^T [Cout][P], out = dX^T [K][P]      (BP)
// Each output element is accumulated by one fused multiply-add per entry in (g, j) order, so the
// result is bit-identical for any thread count and on every SIMD path. Multithreaded (OpenMP).
void spmm_nm(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols, float* out,
             int64_t ld_out, bool accumulate = false);

// Plain reference of spmm_nm (single thread, no tiling, std::fma per entry), for tests and
// benchmarks.
void spmm_nm_reference(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols,
                       float* out, int64_t ld_out, bool accumulate = false);

// out[c][r] = in[r][c] for an r x c row-major matrix.
void transpose(const float* in, int64_t rows, int64_t cols, float* out);

// The SIMD path the CPU kernels (spmm_nm, pre-generation, the update, BF16 conversion) run:
// "avx512", "avx2" or "portable", the best this CPU supports unless restricted. Every path gives
// the same results bit for bit; only the speed differs.
const char* simd_path();
// The paths this CPU and this build can run, best first, ", "-separated.
const char* simd_paths_available();
// Restricts the kernels to the path `name` ("best" lifts the restriction). False where this
// CPU or build cannot run it; not thread-safe against kernels running at the same time.
bool force_simd_path(const std::string& name);

}  // namespace sat::cpu
