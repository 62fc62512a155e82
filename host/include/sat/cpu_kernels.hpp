#pragma once
// The CPU backend's matrix products. Dense products go through OpenBLAS; the N:M products through
// spmm_nm, the project's own multithreaded kernel that touches only the kept weights.
#include <cstdint>

#include "sat/nm.hpp"

namespace sat::cpu {

// C = alpha * op(A) * op(B) + beta * C, row-major FP32 (OpenBLAS cblas_sgemm).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

// Sparse x dense product over the lines of a compressed weight (see NMCompressed):
//   out[l][p] (+)= sum_{g, j} value(l, g, j) * in[g * M + index(l, g, j)][p]
// for l < w.lines(), p < cols. `in` has w.line_length() rows. FP32 accumulation.
//   Axis::K form (W_F):    in = X^T  [K][P],    out = Y^T  [Cout][P]   (FF)
//   Axis::Cout form (W_B): in = dY^T [Cout][P], out = dX^T [K][P]      (BP)
// Multithreaded (OpenMP) over lines and column tiles; deterministic for any thread count.
void spmm_nm(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols, float* out,
             int64_t ld_out, bool accumulate = false);

// Plain reference of spmm_nm (single thread, no tiling), for tests and benchmarks.
void spmm_nm_reference(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols,
                       float* out, int64_t ld_out, bool accumulate = false);

// out[c][r] = in[r][c] for an r x c row-major matrix.
void transpose(const float* in, int64_t rows, int64_t cols, float* out);

}  // namespace sat::cpu
