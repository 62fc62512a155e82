#pragma once
// The CPU backend's matrix products. Dense products go through oneDNN; the N:M products through
// spmm_nm, the project's own multithreaded kernel that touches only the kept weights, on the SIMD
// path chosen at run time.
#include <cstdint>
#include <string>
#include <vector>

#include "sat/conv_geometry.hpp"
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

// ---- Convolutions, in the im2col layout of sat/conv_geometry.hpp: col[K][P] with K = (c, ky, kx)
// and P = b*oh*ow + oy*ow + ox, rows `ld` floats apart; images are x[nb][cin][h][w].

// col = the lowering of images [0, nb); dx = its adjoint (every pixel gets the sum of the dcol
// entries im2col copied from it, from +0 in (ky, kx) order). Both multithreaded (OpenMP).
void im2col(const ConvGeometry& g, const float* x, int64_t nb, float* col, int64_t ld);
void col2im(const ConvGeometry& g, const float* dcol, int64_t ld, int64_t nb, float* dx);

// The N:M products of a convolution on its images, with no lowered matrix in memory; each gives
// the bits of its lowered form (spmm_nm over im2col / followed by col2im) on every SIMD path and
// thread count.
// xpad = the images with a zero border of g.p, [nb][cin][h + 2p][w + 2p], plus the slack
// spmm_nm_conv_ff reads past the last plane.
void conv_pad_images(const ConvGeometry& g, const float* x, int64_t nb, std::vector<float>& xpad);
// FF over the forward form (Axis::K): out[Cout][nb*oh*ow] (rows ld_out apart) =
// spmm_nm(w, im2col(x)); the product's packing reads the windows of xpad directly.
void spmm_nm_conv_ff(const NMCompressed& w, const ConvGeometry& g, const float* xpad, int64_t nb,
                     float* out, int64_t ld_out);
// BP over the backward form (Axis::Cout): dx[nb][cin][h][w] = col2im(spmm_nm(w, dyt)) for
// dyt[Cout][nb*oh*ow] (rows ld apart); each thread computes a few images' lowered gradient in
// cache and scatters it at once.
void spmm_nm_conv_bp(const NMCompressed& w, const ConvGeometry& g, const float* dyt, int64_t ld,
                     int64_t nb, float* dx);
// WU, dense, on the images: dw[cout][K] += the weight gradient of dy[nb][cout][oh][ow] (natural
// layout) over the images padded by conv_pad_images. Each weight's terms are FMAs in position
// order over the images of one tile (conv_wu_images(g) images, fixed by the shape), and the
// tiles' sums are added to dw in image order: the same bits on every SIMD path and thread count.
// Multithreaded (OpenMP) over the tiles.
void conv_wu(const ConvGeometry& g, int64_t cout, const float* xpad, const float* dy, int64_t nb,
             float* dw);
int64_t conv_wu_images(const ConvGeometry& g);
// Whether the CPU's N:M convolutions lower instead (im2col, spmm_nm, col2im): off unless the
// environment has SAT_CONV_LOWERED=1 or force_conv_lowering(true) was called. The same bits
// either way; kept to compare the two and to time them side by side.
bool conv_lowering_forced();
void force_conv_lowering(bool on);

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
// The ISA oneDNN's kernels (the dense products and convolutions) run, as oneDNN names it:
// "avx512_core_bf16", "avx2", ... Its sums' order depends on it; SAT_SIMD=avx2 or portable caps it
// (unless ONEDNN_MAX_CPU_ISA is set). Fixes oneDNN's choice for the process.
const char* dnnl_isa();

}  // namespace sat::cpu
