// The element-wise, normalisation, pooling and layout kernels of the GPU-resident step
// (layer_ops.hpp). Memory-bound; written by hand because each must round and order like its CPU
// layer (host/src/layers/), and they are small. Reductions are deterministic: fixed partitions,
// partial sums in double combined in a fixed order, no atomics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "common.cuh"
#include "layer_ops.hpp"

namespace sat::cuda {

namespace {

using sat::bf16_bits_to_f32;
using sat::f32_to_bf16_bits;

__device__ __forceinline__ float ld(const uint16_t* p, int64_t i) { return bf16_bits_to_f32(p[i]); }
// ReLU on BF16 bits: positive (sign clear, not zero) passes, everything else becomes +0.
__device__ __forceinline__ uint16_t relu1(uint16_t b) { return ((b & 0x8000u) == 0 && b != 0) ? b : uint16_t{0}; }


inline unsigned blocks_for(int64_t n, int threads) { return grid_blocks32(n, threads, "layer kernel"); }

__global__ void nchw_to_nhwc_kernel(const uint16_t* in, int64_t nb, int64_t c, int64_t hw, uint16_t* out) {
  SAT_GRID_LOOP(i, nb * c * hw) {
    const int C = static_cast<int>(c), HW = static_cast<int>(hw);
    const int ch = i % C, q = i / C, b = q / HW, pos = q % HW;
    out[i] = in[(b * c + ch) * hw + pos];
  }
}

__global__ void nhwc_to_nchw_kernel(const uint16_t* in, int64_t nb, int64_t c, int64_t hw, uint16_t* out) {
  SAT_GRID_LOOP(i, nb * c * hw) {
    const int C = static_cast<int>(c), HW = static_cast<int>(hw);
    const int pos = i % HW, ch = (i / HW) % C, b = i / (HW * C);
    out[i] = in[(b * hw + pos) * c + ch];
  }
}

__global__ void pad_rows_kernel(const uint16_t* in, int64_t rows, int64_t cols, uint16_t* out, int64_t ldo) {
  SAT_GRID_LOOP(i, rows * ldo) {
    const int L = static_cast<int>(ldo), r = i / L, c = i % L;
    out[i] = c < cols ? in[r * cols + c] : uint16_t{0};
  }
}

__global__ void bias_round_kernel(const float* acc, int64_t lda, const float* bias, int64_t rows, int64_t c,
                                  uint16_t* y) {
  SAT_GRID_LOOP(i, rows * c) {
    const int C = static_cast<int>(c), r = i / C, j = i % C;
    const float v = acc[r * lda + j];
    y[i] = f32_to_bf16_bits(bias ? __fadd_rn(v, bias[j]) : v);
  }
}

// Column reductions over [rows][c]: blockIdx.x covers 32 columns, blockIdx.y one of `chunks` row
// ranges; thread (x, y) sums rows y, y+8, ... of its range. Partials [chunk][c] (and a second
// array [chunk][c] after them), combined by column_finish in chunk order.
constexpr int kRedY = 8;
// Row chunks of a column reduction. Where c % 8 == 0 the 16-byte kernel (column_partial8_kernel)
// covers 256 columns a block and gets about 8 blocks a multiprocessor, so that enough loads are in
// flight to approach the memory's rate; otherwise 4 blocks of 32 columns. At least 64 rows a chunk.
inline int64_t chunks_for(int64_t rows, int64_t c) {
  const bool by8 = c % 8 == 0;
  const int64_t col_blocks = ceil_div(c, by8 ? 256 : 32);
  const int64_t want = ceil_div(static_cast<int64_t>(sm_count()) * (by8 ? 8 : 4), col_blocks);
  const int64_t by_rows = ceil_div(rows, 64);
  return want < by_rows ? (want < 1 ? 1 : want) : by_rows;
}

// Reduces a block's (32 x Y) per-thread values to 32 column sums in thread row 0, added in y order.
template <int Y>
__device__ __forceinline__ void block_col_sum(double& a, double& b, double (*sh)[32][Y + 1]) {
  sh[0][threadIdx.x][threadIdx.y] = a;
  sh[1][threadIdx.x][threadIdx.y] = b;
  __syncthreads();
  if (threadIdx.y == 0) {
    a = 0;
    b = 0;
    for (int y = 0; y < Y; ++y) {
      a += sh[0][threadIdx.x][y];
      b += sh[1][threadIdx.x][y];
    }
  }
}

// mode 0: sum of x and of x^2 (BatchNorm statistics); mode 1: sum of dy and of dy * xhat with
// xhat = float((x - mean) * invstd) as the CPU stores it (BatchNorm backward); mode 2: sum of x only.
__global__ void column_partial_kernel(int mode, const uint16_t* x, const uint16_t* dy, int64_t rows, int64_t c,
                                      int64_t chunk_rows, const double* mean, const double* invstd, double* part) {
  __shared__ double sh[2][32][kRedY + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double a = 0, b = 0;
  if (j < c) {
    if (mode == 1) {
      const double m = mean[j], is = invstd[j];
      for (int64_t r = r0 + threadIdx.y; r < r1; r += kRedY) {
        const double g = ld(dy, r * c + j);
        const float xh = static_cast<float>((static_cast<double>(ld(x, r * c + j)) - m) * is);
        a += g;
        b += g * static_cast<double>(xh);
      }
    } else {
      for (int64_t r = r0 + threadIdx.y; r < r1; r += kRedY) {
        const double v = ld(x, r * c + j);
        a += v;
        b += v * v;
      }
    }
  }
  block_col_sum<kRedY>(a, b, sh);
  if (threadIdx.y == 0 && j < c) {
    const int64_t chunks = gridDim.y;
    part[blockIdx.y * c + j] = a;
    if (mode != 2) part[(chunks + blockIdx.y) * c + j] = b;
  }
}

// The same for an even column count, two columns per thread (32-bit loads): a block covers 64
// columns. Same partition of the rows, so the same sums as column_partial_kernel.
__global__ void column_partial2_kernel(int mode, const uint32_t* x, const uint32_t* dy, int64_t rows, int64_t c,
                                       int64_t chunk_rows, const double* mean, const double* invstd, double* part) {
  __shared__ double sh[4][32][kRedY + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 64 + 2 * threadIdx.x, c2 = c / 2;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double a0 = 0, b0 = 0, a1 = 0, b1 = 0;
  if (j < c) {
    if (mode == 1) {
      const double m0 = mean[j], m1 = mean[j + 1], s0 = invstd[j], s1 = invstd[j + 1];
      for (int64_t r = r0 + threadIdx.y; r < r1; r += kRedY) {
        const uint32_t xv = x[r * c2 + j / 2], gv = dy[r * c2 + j / 2];
        const double g0 = bf16_bits_to_f32(static_cast<uint16_t>(gv)), g1 = bf16_bits_to_f32(static_cast<uint16_t>(gv >> 16));
        const float x0 = static_cast<float>((static_cast<double>(bf16_bits_to_f32(static_cast<uint16_t>(xv))) - m0) * s0);
        const float x1 = static_cast<float>((static_cast<double>(bf16_bits_to_f32(static_cast<uint16_t>(xv >> 16))) - m1) * s1);
        a0 += g0;
        b0 += g0 * static_cast<double>(x0);
        a1 += g1;
        b1 += g1 * static_cast<double>(x1);
      }
    } else {
      for (int64_t r = r0 + threadIdx.y; r < r1; r += kRedY) {
        const uint32_t xv = x[r * c2 + j / 2];
        const double v0 = bf16_bits_to_f32(static_cast<uint16_t>(xv)), v1 = bf16_bits_to_f32(static_cast<uint16_t>(xv >> 16));
        a0 += v0;
        b0 += v0 * v0;
        a1 += v1;
        b1 += v1 * v1;
      }
    }
  }
  sh[0][threadIdx.x][threadIdx.y] = a0;
  sh[1][threadIdx.x][threadIdx.y] = b0;
  sh[2][threadIdx.x][threadIdx.y] = a1;
  sh[3][threadIdx.x][threadIdx.y] = b1;
  __syncthreads();
  if (threadIdx.y == 0 && j < c) {
    double t[4] = {0, 0, 0, 0};
    for (int y = 0; y < kRedY; ++y)
      for (int u = 0; u < 4; ++u) t[u] += sh[u][threadIdx.x][y];
    const int64_t chunks = gridDim.y;
    part[blockIdx.y * c + j] = t[0];
    part[blockIdx.y * c + j + 1] = t[2];
    if (mode != 2) {
      part[(chunks + blockIdx.y) * c + j] = t[1];
      part[(chunks + blockIdx.y) * c + j + 1] = t[3];
    }
  }
}

// The same for c % 8 == 0: eight columns per thread (16-byte loads), blockDim (bx, 256 / bx) with
// bx = min(c / 8, 32) groups of 8 columns, thread (x, y) summing rows y, y + by, ... of its chunk, two
// rows' loads issued before their sums so that more loads are in flight. The block's per-thread
// sums are then added per column over y in order: a fixed order, so the results are deterministic
// (not the same roundings as the narrower kernels', which partition the rows otherwise).
__device__ __forceinline__ void bf16x8(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  for (int k = 0; k < 4; ++k) {
    f[2 * k] = bf16_bits_to_f32(static_cast<uint16_t>(w[k]));
    f[2 * k + 1] = bf16_bits_to_f32(static_cast<uint16_t>(w[k] >> 16));
  }
}
__device__ __forceinline__ uint4 pack_bf16x8(const uint32_t (&o)[8]) {
  return make_uint4(o[0] | (o[1] << 16), o[2] | (o[3] << 16), o[4] | (o[5] << 16), o[6] | (o[7] << 16));
}

// dy with ReLU's backward applied: zero where the fused ReLU's output y is zero (relu_backward's rule).
__device__ __forceinline__ uint4 relu_gate(uint4 g, const uint4& y) {
  const uint32_t yw[4] = {y.x, y.y, y.z, y.w};
  uint32_t gw[4] = {g.x, g.y, g.z, g.w};
  for (int k = 0; k < 4; ++k) {
    if ((yw[k] & 0xFFFFu) == 0) gw[k] &= 0xFFFF0000u;
    if ((yw[k] >> 16) == 0) gw[k] &= 0x0000FFFFu;
  }
  return make_uint4(gw[0], gw[1], gw[2], gw[3]);
}

template <int MODE>
__device__ __forceinline__ void partial8_add(const uint4& xv, const uint4& gv, const double (&m)[8], const double (&is)[8],
                                             double (&a)[8], double (&b)[8]) {
  float xf[8];
  bf16x8(xv, xf);
  if (MODE == 1) {
    float gf[8];
    bf16x8(gv, gf);
    for (int k = 0; k < 8; ++k) {
      const double g = gf[k];
      const float xh = static_cast<float>((static_cast<double>(xf[k]) - m[k]) * is[k]);
      a[k] += g;
      b[k] += g * static_cast<double>(xh);
    }
  } else {
    for (int k = 0; k < 8; ++k) {
      const double v = xf[k];
      a[k] += v;
      if (MODE == 0) b[k] += v * v;
    }
  }
}

// relu_y (mode 1, may be null): the output of a ReLU fused after the BatchNorm, gating dy.
template <int MODE>
__global__ void __launch_bounds__(256) column_partial8_kernel(const uint4* x, const uint4* dy, const uint4* relu_y,
                                                              int rows, int c, int chunk_rows, const double* mean,
                                                              const double* invstd, double* part) {
  __shared__ double sh[2][256 * 8];
  const int bx = blockDim.x, by = blockDim.y, c8 = c / 8;
  const int cg = blockIdx.x * bx + threadIdx.x;
  const int r0 = blockIdx.y * chunk_rows, r1 = min(r0 + chunk_rows, rows);
  double a[8], b[8], m[8], is[8];
  for (int k = 0; k < 8; ++k) a[k] = b[k] = m[k] = is[k] = 0;
  if (cg < c8) {
    if (MODE == 1) {
      for (int k = 0; k < 8; ++k) {
        m[k] = mean[8 * cg + k];
        is[k] = invstd[8 * cg + k];
      }
    }
    const uint4 zero = make_uint4(0, 0, 0, 0);
    int r = r0 + threadIdx.y;
    for (; r + by < r1; r += 2 * by) {
      const int64_t i0 = static_cast<int64_t>(r) * c8 + cg, i1 = i0 + static_cast<int64_t>(by) * c8;
      const uint4 x0 = x[i0], x1 = x[i1];
      uint4 g0 = MODE == 1 ? dy[i0] : zero, g1 = MODE == 1 ? dy[i1] : zero;
      if (MODE == 1 && relu_y) {
        g0 = relu_gate(g0, relu_y[i0]);
        g1 = relu_gate(g1, relu_y[i1]);
      }
      partial8_add<MODE>(x0, g0, m, is, a, b);
      partial8_add<MODE>(x1, g1, m, is, a, b);
    }
    if (r < r1) {
      const int64_t i0 = static_cast<int64_t>(r) * c8 + cg;
      uint4 g0 = MODE == 1 ? dy[i0] : zero;
      if (MODE == 1 && relu_y) g0 = relu_gate(g0, relu_y[i0]);
      partial8_add<MODE>(x[i0], g0, m, is, a, b);
    }
  }
  const int t = threadIdx.y * bx + threadIdx.x;
  for (int k = 0; k < 8; ++k) {
    sh[0][t * 8 + k] = a[k];
    sh[1][t * 8 + k] = b[k];
  }
  __syncthreads();
  if (t < bx * 8) {
    const int tx = t / 8, k = t % 8, col = (blockIdx.x * bx + tx) * 8 + k;
    if (col < c) {
      double sa = 0, sb = 0;
      for (int y = 0; y < by; ++y) {
        sa += sh[0][(y * bx + tx) * 8 + k];
        sb += sh[1][(y * bx + tx) * 8 + k];
      }
      const int64_t chunks = gridDim.y;
      part[static_cast<int64_t>(blockIdx.y) * c + col] = sa;
      if (MODE != 2) part[(chunks + blockIdx.y) * c + col] = sb;
    }
  }
}

// Launches the column partial sums: two columns per thread where the column count is even.
// relu_y: the 16-byte kernel only (the callers check).
void column_partials_launch(int mode, const uint16_t* x, const uint16_t* dy, int64_t rows, int64_t c, int64_t chunks,
                            const double* mean, const double* invstd, double* part, cudaStream_t s,
                            const uint16_t* relu_y = nullptr) {
  const int64_t chunk_rows = ceil_div(rows, chunks);
  if (c % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(dy) % 16 == 0) {
    check32(rows * c, "column reduction");
    const int bx = static_cast<int>(std::min<int64_t>(c / 8, 32));
    const dim3 grid(static_cast<unsigned>(ceil_div(c / 8, bx)), static_cast<unsigned>(chunks)), block(bx, 256 / bx);
    const auto* xv = reinterpret_cast<const uint4*>(x);
    const auto* gv = reinterpret_cast<const uint4*>(dy);
    const auto* yv = reinterpret_cast<const uint4*>(relu_y);
    const int r = static_cast<int>(rows), cc = static_cast<int>(c), cr = static_cast<int>(chunk_rows);
    if (mode == 0) column_partial8_kernel<0><<<grid, block, 0, s>>>(xv, gv, yv, r, cc, cr, mean, invstd, part);
    else if (mode == 1) column_partial8_kernel<1><<<grid, block, 0, s>>>(xv, gv, yv, r, cc, cr, mean, invstd, part);
    else column_partial8_kernel<2><<<grid, block, 0, s>>>(xv, gv, yv, r, cc, cr, mean, invstd, part);
    SAT_CUDA_LAUNCHED("column_partial8_kernel");
    return;
  }
  if (relu_y) throw Error("column reduction: a fused ReLU needs c % 8 == 0 and 16-byte aligned rows");
  if (c % 2 == 0) {
    const dim3 grid(static_cast<unsigned>(ceil_div(c, 64)), static_cast<unsigned>(chunks));
    column_partial2_kernel<<<grid, dim3(32, kRedY), 0, s>>>(mode, reinterpret_cast<const uint32_t*>(x),
                                                             reinterpret_cast<const uint32_t*>(dy), rows, c, chunk_rows,
                                                             mean, invstd, part);
    SAT_CUDA_LAUNCHED("column_partial2_kernel");
  } else {
    const dim3 grid(static_cast<unsigned>(ceil_div(c, 32)), static_cast<unsigned>(chunks));
    column_partial_kernel<<<grid, dim3(32, kRedY), 0, s>>>(mode, x, dy, rows, c, chunk_rows, mean, invstd, part);
    SAT_CUDA_LAUNCHED("column_partial_kernel");
  }
}

// A kernel's launch shape.
struct Launch {
  dim3 grid, block;
};

// The finishing kernels add a column's `chunks` partials with a block of 32 x 32 threads: thread
// (x, y) adds chunks y, y + 32, ... of column blockIdx.x * 32 + x, and thread row 0 adds the 32 sums
// in y order. A fixed order, so deterministic; one thread per column walking a thousand chunks
// serially would spend hundreds of microseconds on load latency alone.
constexpr int kFinishY = 32;
inline Launch finish_launch(int64_t c) { return {dim3(static_cast<unsigned>(ceil_div(c, 32))), dim3(32, kFinishY)}; }

// Column j's sums of partial arrays 0 and (where TWO) 1, valid in thread row 0; returns j.
template <bool TWO>
__device__ __forceinline__ int64_t chunk_sums(const double* part, int64_t chunks, int64_t c, double& s0, double& s1) {
  __shared__ double sh[2][32][kFinishY + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  s0 = 0;
  s1 = 0;
  if (j < c) {
    for (int64_t k = threadIdx.y; k < chunks; k += kFinishY) {
      s0 += part[k * c + j];
      if (TWO) s1 += part[(chunks + k) * c + j];
    }
  }
  block_col_sum<kFinishY>(s0, s1, sh);
  return j;
}

__global__ void bias_grad_finish(const double* part, int64_t chunks, int64_t c, float* grad) {
  double s = 0, unused = 0;
  const int64_t j = chunk_sums<false>(part, chunks, c, s, unused);
  if (threadIdx.y != 0 || j >= c) return;
  grad[j] += static_cast<float>(s);
}

__global__ void bn_stats_finish(const double* part, int64_t chunks, int64_t c, int64_t count, double eps,
                                double momentum, float* rmean, float* rvar, double* mean, double* invstd) {
  double s = 0, sq = 0;
  const int64_t j = chunk_sums<true>(part, chunks, c, s, sq);
  if (threadIdx.y != 0 || j >= c) return;
  const double n = static_cast<double>(count), m = s / n;
  // E[x^2] - m^2 in double: BF16 inputs square exactly, so the cancellation costs digits only when
  // |mean| / std approaches 2^20, far outside what a trained network's activations reach.
  double ss = sq - s * m;
  if (ss < 0) ss = 0;
  const double var = ss / n, unbiased = ss / (n - 1);
  mean[j] = m;
  invstd[j] = 1.0 / sqrt(var + eps);
  rmean[j] = static_cast<float>((1 - momentum) * rmean[j] + momentum * m);
  rvar[j] = static_cast<float>((1 - momentum) * rvar[j] + momentum * unbiased);
}

__global__ void bn_apply_train(const uint16_t* x, int64_t rows, int64_t c, const double* mean, const double* invstd,
                               const float* gamma, const float* beta, uint16_t* y) {
  SAT_GRID_LOOP(i, rows * c) {
    const int j = i % static_cast<int>(c);
    const double n = (static_cast<double>(ld(x, i)) - mean[j]) * invstd[j];
    y[i] = f32_to_bf16_bits(static_cast<float>(static_cast<double>(gamma[j]) * n + beta[j]));
  }
}

// Two channels per thread (32-bit loads and stores) for an even channel count.
__global__ void bn_apply_train2(const uint32_t* x, int64_t rows, int64_t c, const double* mean, const double* invstd,
                                const float* gamma, const float* beta, uint32_t* y) {
  const int c2 = static_cast<int>(c / 2);
  SAT_GRID_LOOP(i, rows * c2) {
    const int j = 2 * (i % c2);
    const uint32_t v = x[i];
    const double n0 = (static_cast<double>(bf16_bits_to_f32(static_cast<uint16_t>(v))) - mean[j]) * invstd[j];
    const double n1 = (static_cast<double>(bf16_bits_to_f32(static_cast<uint16_t>(v >> 16))) - mean[j + 1]) * invstd[j + 1];
    const uint32_t o0 = f32_to_bf16_bits(static_cast<float>(static_cast<double>(gamma[j]) * n0 + beta[j]));
    const uint32_t o1 = f32_to_bf16_bits(static_cast<float>(static_cast<double>(gamma[j + 1]) * n1 + beta[j + 1]));
    y[i] = o0 | (o1 << 16);
  }
}

// The 16-byte per-element kernels (c % 8 == 0) run on a channel grid: blockDim (bx, by), thread x
// owning eight channels for every row it visits (rows y, y + by * gridDim.y, ...), so that a
// channel's coefficients are read once per thread into registers. Read per element, as a flat
// grid-stride loop must, they cost several times the data's own traffic.
constexpr int kChannelThreads = 128;
inline Launch channel_grid(int64_t rows, int64_t c8) {
  const int bx = static_cast<int>(std::min<int64_t>(c8, 32)), by = kChannelThreads / bx;
  const int64_t gx = ceil_div(c8, bx);
  // About a full machine of resident threads, two rows' loads in flight each.
  const int64_t want_y = std::max<int64_t>(1, ceil_div(static_cast<int64_t>(sm_count()) * 2048 / kChannelThreads, gx));
  const int64_t gy = std::max<int64_t>(1, std::min(want_y, ceil_div(rows, 2 * by)));
  return {dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), dim3(bx, by)};
}
#define SAT_CHANNEL_ROWS(r0, r1, step)                                              \
  const int step = static_cast<int>(gridDim.y * blockDim.y);                        \
  int r0 = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y);                  \
  for (int r1 = r0 + step; r0 < rows; r0 += 2 * step, r1 += 2 * step)

// BatchNorm's forward on eight channels: the same arithmetic per element as bn_apply_train, so the
// same bits.
struct BnForward8 {
  double m[8], is[8], ga[8], be[8];
  __device__ BnForward8(int cg, const double* mean, const double* invstd, const float* gamma, const float* beta) {
    for (int k = 0; k < 8; ++k) {
      const int j = 8 * cg + k;
      m[k] = mean[j];
      is[k] = invstd[j];
      ga[k] = gamma[j];
      be[k] = beta[j];
    }
  }
  __device__ __forceinline__ uint4 operator()(const uint4& xv, bool relu) const {
    float xf[8];
    bf16x8(xv, xf);
    uint32_t o[8];
    for (int k = 0; k < 8; ++k) {
      const double n = (static_cast<double>(xf[k]) - m[k]) * is[k];
      o[k] = f32_to_bf16_bits(static_cast<float>(ga[k] * n + be[k]));
      if (relu) o[k] = relu1(static_cast<uint16_t>(o[k]));
    }
    return pack_bf16x8(o);
  }
};

__global__ void __launch_bounds__(kChannelThreads) bn_apply_train8(const uint4* x, int rows, int c8, const double* mean,
                                                                   const double* invstd, const float* gamma,
                                                                   const float* beta, bool relu, uint4* y) {
  const int cg = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (cg >= c8) return;
  const BnForward8 f(cg, mean, invstd, gamma, beta);
  SAT_CHANNEL_ROWS(r0, r1, step) {
    const int64_t i0 = static_cast<int64_t>(r0) * c8 + cg, i1 = static_cast<int64_t>(r1) * c8 + cg;
    const bool two = r1 < rows;
    const uint4 x0 = x[i0], x1 = two ? x[i1] : x0;
    y[i0] = f(x0, relu);
    if (two) y[i1] = f(x1, relu);
  }
}

__global__ void bn_apply_eval(const uint16_t* x, int64_t rows, int64_t c, double eps, const float* gamma,
                              const float* beta, const float* rmean, const float* rvar, bool relu, uint16_t* y) {
  SAT_GRID_LOOP(i, rows * c) {
    const int j = i % static_cast<int>(c);
    const double is = 1.0 / sqrt(static_cast<double>(rvar[j]) + eps);
    const double n = (static_cast<double>(ld(x, i)) - rmean[j]) * is;
    const uint16_t o = f32_to_bf16_bits(static_cast<float>(static_cast<double>(gamma[j]) * n + beta[j]));
    y[i] = relu ? relu1(o) : o;
  }
}

// Per channel: the sums of the partials, the parameter gradients, and the two means backward uses
// (written over mean's and invstd's neighbours: coef[0][j] = mean_g, coef[1][j] = mean_gx).
__global__ void bn_back_finish(const double* part, int64_t chunks, int64_t c, int64_t count, float* ggrad,
                               float* bgrad, double* coef) {
  double sg = 0, sgx = 0;
  const int64_t j = chunk_sums<true>(part, chunks, c, sg, sgx);
  if (threadIdx.y != 0 || j >= c) return;
  ggrad[j] += static_cast<float>(sgx);
  bgrad[j] += static_cast<float>(sg);
  coef[j] = sg / static_cast<double>(count);
  coef[c + j] = sgx / static_cast<double>(count);
}

__global__ void bn_back_apply(const uint16_t* x, const uint16_t* dy, int64_t rows, int64_t c, const double* mean,
                              const double* invstd, const float* gamma, const double* coef, uint16_t* dx) {
  SAT_GRID_LOOP(i, rows * c) {
    const int j = i % static_cast<int>(c);
    const double is = invstd[j];
    const float xh = static_cast<float>((static_cast<double>(ld(x, i)) - mean[j]) * is);
    const double scale = static_cast<double>(gamma[j]) * is;
    const double g = ld(dy, i);
    dx[i] = f32_to_bf16_bits(static_cast<float>(scale * (g - coef[j] - static_cast<double>(xh) * coef[c + j])));
  }
}

__global__ void bn_back_apply2(const uint32_t* x, const uint32_t* dy, int64_t rows, int64_t c, const double* mean,
                               const double* invstd, const float* gamma, const double* coef, uint32_t* dx) {
  const int c2 = static_cast<int>(c / 2);
  SAT_GRID_LOOP(i, rows * c2) {
    const int j0 = 2 * (i % c2);
    const uint32_t xv = x[i], gv = dy[i];
    uint32_t out = 0;
    for (int u = 0; u < 2; ++u) {
      const int j = j0 + u;
      const double is = invstd[j];
      const float xh = static_cast<float>((static_cast<double>(bf16_bits_to_f32(static_cast<uint16_t>(xv >> (16 * u)))) - mean[j]) * is);
      const double scale = static_cast<double>(gamma[j]) * is;
      const double g = bf16_bits_to_f32(static_cast<uint16_t>(gv >> (16 * u)));
      const uint32_t o = f32_to_bf16_bits(static_cast<float>(scale * (g - coef[j] - static_cast<double>(xh) * coef[c + j])));
      out |= o << (16 * u);
    }
    dx[i] = out;
  }
}

// BatchNorm's backward on eight channels: the same arithmetic per element as bn_back_apply, so the
// same bits.
struct BnBackward8 {
  double m[8], is[8], sc[8], mg[8], mgx[8];
  __device__ BnBackward8(int cg, int c, const double* mean, const double* invstd, const float* gamma,
                         const double* coef) {
    for (int k = 0; k < 8; ++k) {
      const int j = 8 * cg + k;
      m[k] = mean[j];
      is[k] = invstd[j];
      sc[k] = static_cast<double>(gamma[j]) * is[k];
      mg[k] = coef[j];
      mgx[k] = coef[c + j];
    }
  }
  __device__ __forceinline__ uint4 operator()(const uint4& xv, const uint4& gv) const {
    float xf[8], gf[8];
    bf16x8(xv, xf);
    bf16x8(gv, gf);
    uint32_t o[8];
    for (int k = 0; k < 8; ++k) {
      const float xh = static_cast<float>((static_cast<double>(xf[k]) - m[k]) * is[k]);
      const double g = gf[k];
      o[k] = f32_to_bf16_bits(static_cast<float>(sc[k] * (g - mg[k] - static_cast<double>(xh) * mgx[k])));
    }
    return pack_bf16x8(o);
  }
};

// relu_y (may be null): the output of a ReLU fused after the BatchNorm, gating dy.
__global__ void __launch_bounds__(kChannelThreads) bn_back_apply8(const uint4* x, const uint4* dy, const uint4* relu_y,
                                                                  int rows, int c8, const double* mean,
                                                                  const double* invstd, const float* gamma,
                                                                  const double* coef, uint4* dx) {
  const int cg = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (cg >= c8) return;
  const BnBackward8 f(cg, 8 * c8, mean, invstd, gamma, coef);
  SAT_CHANNEL_ROWS(r0, r1, step) {
    const int64_t i0 = static_cast<int64_t>(r0) * c8 + cg, i1 = static_cast<int64_t>(r1) * c8 + cg;
    const bool two = r1 < rows;
    uint4 g0 = dy[i0], g1 = two ? dy[i1] : g0;
    const uint4 x0 = x[i0], x1 = two ? x[i1] : x0;
    if (relu_y) {
      g0 = relu_gate(g0, relu_y[i0]);
      if (two) g1 = relu_gate(g1, relu_y[i1]);
    }
    dx[i0] = f(x0, g0);
    if (two) dx[i1] = f(x1, g1);
  }
}

__global__ void relu_kernel(const uint16_t* x, int64_t n, uint16_t* y) {
  SAT_GRID_LOOP(i, n) {
    const uint16_t b = x[i];
    y[i] = ((b & 0x8000u) == 0 && b != 0) ? b : uint16_t{0};
  }
}

__global__ void relu_back_kernel(const uint16_t* y, const uint16_t* dy, int64_t n, uint16_t* dx) {
  SAT_GRID_LOOP(i, n) dx[i] = y[i] != 0 ? dy[i] : uint16_t{0};
}

// The residual join: out = round(a + b). gate (may be null): b is a gradient gated by the zeros of
// the output of a ReLU fused after the join (relu_backward's rule); relu: that ReLU on the sum
// (relu_forward's rule). The same bits as the separate passes.
__global__ void add_kernel(const uint16_t* a, const uint16_t* b, const uint16_t* gate, int64_t n, bool relu,
                           uint16_t* out) {
  SAT_GRID_LOOP(i, n) {
    const uint16_t bi = gate && gate[i] == 0 ? uint16_t{0} : b[i];
    const uint16_t o = f32_to_bf16_bits(__fadd_rn(ld(a, i), bf16_bits_to_f32(bi)));
    out[i] = relu ? relu1(o) : o;
  }
}

// Eight elements per thread (16-byte loads and stores) where n % 8 == 0 and the arrays are 16-byte
// aligned (every resident buffer is a cudaMalloc allocation of its own).
__global__ void relu8_kernel(const uint4* x, int64_t n8, uint4* y) {
  SAT_GRID_LOOP(i, n8) {
    uint4 v = x[i];
    uint16_t* e = reinterpret_cast<uint16_t*>(&v);
    for (int j = 0; j < 8; ++j) e[j] = relu1(e[j]);
    y[i] = v;
  }
}
__global__ void relu_back8_kernel(const uint4* y, const uint4* dy, int64_t n8, uint4* dx) {
  SAT_GRID_LOOP(i, n8) {
    const uint4 a = y[i];
    uint4 g = dy[i];
    const uint16_t* ea = reinterpret_cast<const uint16_t*>(&a);
    uint16_t* eg = reinterpret_cast<uint16_t*>(&g);
    for (int j = 0; j < 8; ++j) eg[j] = ea[j] != 0 ? eg[j] : uint16_t{0};
    dx[i] = g;
  }
}
__global__ void add8_kernel(const uint4* a, const uint4* b, const uint4* gate, int64_t n8, bool relu, uint4* out) {
  SAT_GRID_LOOP(i, n8) {
    const uint4 u = a[i], v = gate ? relu_gate(b[i], gate[i]) : b[i];
    uint4 o;
    const uint16_t* eu = reinterpret_cast<const uint16_t*>(&u);
    const uint16_t* ev = reinterpret_cast<const uint16_t*>(&v);
    uint16_t* eo = reinterpret_cast<uint16_t*>(&o);
    for (int j = 0; j < 8; ++j) {
      const uint16_t r = f32_to_bf16_bits(__fadd_rn(bf16_bits_to_f32(eu[j]), bf16_bits_to_f32(ev[j])));
      eo[j] = relu ? relu1(r) : r;
    }
    out[i] = o;
  }
}

__device__ __forceinline__ bool beats(float v, float best) { return (v > best) || (isnan(v) && !isnan(best)); }

__global__ void maxpool_kernel(const uint16_t* x, PoolGeometry g, int64_t nb, uint16_t* y, int32_t* am) {
  SAT_GRID_LOOP(i, nb * g.oh * g.ow * g.c) {
    const int gc = static_cast<int>(g.c), gow = static_cast<int>(g.ow), goh = static_cast<int>(g.oh);
    const int64_t c = i % gc, q = i / gc, ox = static_cast<int>(q) % gow, oy = (static_cast<int>(q) / gow) % goh, b = static_cast<int>(q) / (gow * goh);
    const int64_t y0 = max(oy * g.s - g.p, int64_t{0}), y1 = min(oy * g.s - g.p + g.k, g.h);
    const int64_t x0 = max(ox * g.s - g.p, int64_t{0}), x1 = min(ox * g.s - g.p + g.k, g.w);
    const uint16_t* plane = x + b * g.h * g.w * g.c + c;
    int64_t bi = y0 * g.w + x0;
    float best = ld(plane, bi * g.c);
    for (int64_t iy = y0; iy < y1; ++iy) {
      for (int64_t ix = x0; ix < x1; ++ix) {
        const float v = ld(plane, (iy * g.w + ix) * g.c);
        if (beats(v, best)) {
          best = v;
          bi = iy * g.w + ix;
        }
      }
    }
    y[i] = f32_to_bf16_bits(best);
    if (am) am[i] = static_cast<int32_t>(bi);
  }
}

// Calls f(oy, ox) for every pooling window that covers input pixel (iy, ix) (oy*s - p <= iy <
// oy*s - p + k, likewise x), rows outer, in ascending order: the order the backward passes sum in.
template <typename F>
__device__ void for_each_window(const PoolGeometry& g, int64_t iy, int64_t ix, F f) {
  const int64_t oy0 = max(int64_t{0}, (iy + g.p - g.k + g.s) / g.s), oy1 = min(g.oh - 1, (iy + g.p) / g.s);
  const int64_t ox0 = max(int64_t{0}, (ix + g.p - g.k + g.s) / g.s), ox1 = min(g.ow - 1, (ix + g.p) / g.s);
  for (int64_t oy = oy0; oy <= oy1; ++oy) {
    if (iy + g.p - oy * g.s < 0 || iy + g.p - oy * g.s >= g.k) continue;
    for (int64_t ox = ox0; ox <= ox1; ++ox) {
      if (ix + g.p - ox * g.s < 0 || ix + g.p - ox * g.s >= g.k) continue;
      f(oy, ox);
    }
  }
}

// Gather form of the scatter dx[argmax] += dy: each input pixel sums, in ascending output order (the
// CPU's), the gradients of the windows that chose it. No atomics, deterministic.
__global__ void maxpool_back_kernel(const uint16_t* dy, const int32_t* am, PoolGeometry g, int64_t nb, uint16_t* dx) {
  SAT_GRID_LOOP(i, nb * g.h * g.w * g.c) {
    const int gc = static_cast<int>(g.c), gw = static_cast<int>(g.w), gh = static_cast<int>(g.h);
    const int c = i % gc, pix = i / gc, ix = pix % gw, iy = (pix / gw) % gh, b = pix / (gw * gh);
    const int64_t me = iy * g.w + ix;
    float sum = 0.0f;
    for_each_window(g, iy, ix, [&](int64_t oy, int64_t ox) {
      const int64_t o = ((b * g.oh + oy) * g.ow + ox) * g.c + c;
      if (am[o] == me) sum = __fadd_rn(sum, ld(dy, o));
    });
    dx[i] = f32_to_bf16_bits(sum);
  }
}

__global__ void avgpool_kernel(const uint16_t* x, PoolGeometry g, int64_t nb, uint16_t* y) {
  const float scale = 1.0f / static_cast<float>(g.k * g.k);
  SAT_GRID_LOOP(i, nb * g.oh * g.ow * g.c) {
    const int gc = static_cast<int>(g.c), gow = static_cast<int>(g.ow), goh = static_cast<int>(g.oh);
    const int64_t c = i % gc, q = i / gc, ox = static_cast<int>(q) % gow, oy = (static_cast<int>(q) / gow) % goh, b = static_cast<int>(q) / (gow * goh);
    const int64_t y0 = max(oy * g.s - g.p, int64_t{0}), y1 = min(oy * g.s - g.p + g.k, g.h);
    const int64_t x0 = max(ox * g.s - g.p, int64_t{0}), x1 = min(ox * g.s - g.p + g.k, g.w);
    const uint16_t* plane = x + b * g.h * g.w * g.c + c;
    float sum = 0.0f;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) sum = __fadd_rn(sum, ld(plane, (iy * g.w + ix) * g.c));
    y[i] = f32_to_bf16_bits(__fmul_rn(sum, scale));
  }
}

__global__ void avgpool_back_kernel(const uint16_t* dy, PoolGeometry g, int64_t nb, uint16_t* dx) {
  const float scale = 1.0f / static_cast<float>(g.k * g.k);
  SAT_GRID_LOOP(i, nb * g.h * g.w * g.c) {
    const int gc = static_cast<int>(g.c), gw = static_cast<int>(g.w), gh = static_cast<int>(g.h);
    const int c = i % gc, pix = i / gc, ix = pix % gw, iy = (pix / gw) % gh, b = pix / (gw * gh);
    float sum = 0.0f;
    for_each_window(g, iy, ix, [&](int64_t oy, int64_t ox) {
      sum = __fadd_rn(sum, __fmul_rn(ld(dy, ((b * g.oh + oy) * g.ow + ox) * g.c + c), scale));
    });
    dx[i] = f32_to_bf16_bits(sum);
  }
}

__global__ void gap_kernel(const uint16_t* x, int64_t nb, int64_t hw, int64_t c, uint16_t* y) {
  SAT_GRID_LOOP(i, nb * c) {
    const int C = static_cast<int>(c), j = i % C, b = i / C;
    double s = 0;
    for (int64_t p = 0; p < hw; ++p) s += ld(x, (b * hw + p) * c + j);
    y[i] = f32_to_bf16_bits(static_cast<float>(s / static_cast<double>(hw)));
  }
}

__global__ void gap_back_kernel(const uint16_t* dy, int64_t nb, int64_t hw, int64_t c, uint16_t* dx) {
  const float scale = 1.0f / static_cast<float>(hw);
  SAT_GRID_LOOP(i, nb * hw * c) {
    const int C = static_cast<int>(c), j = i % C, b = i / (static_cast<int>(hw) * C);
    dx[i] = f32_to_bf16_bits(__fmul_rn(ld(dy, b * c + j), scale));
  }
}

__global__ void bf16_to_f32_rows(const uint16_t* in, int64_t n, float* out) {
  SAT_GRID_LOOP(i, n) out[i] = ld(in, i);
}
__global__ void f32_to_bf16_kernel(const float* in, int64_t n, uint16_t* out) {
  SAT_GRID_LOOP(i, n) out[i] = f32_to_bf16_bits(in[i]);
}

// One thread: b is a batch (<= a few thousand), and the CPU sums the rows in this order.
__global__ void loss_sum_kernel(const double* row_loss, const int* row_correct, int64_t b, double* loss, int* correct) {
  double s = 0;
  int n = 0;
  for (int64_t i = 0; i < b; ++i) {
    s += row_loss[i];
    n += row_correct[i];
  }
  *loss = s / static_cast<double>(b);
  *correct = n;
}

__global__ void nonfinite_kernel(const float* v, int64_t n, int* flag) {
  bool bad = false;
  SAT_GRID_LOOP(i, n) bad |= !isfinite(v[i]);
  if (bad) atomicExch(flag, 1);
}

// Whether n elements of three BF16 arrays can go 8 at a time (16-byte accesses).
bool vec8(int64_t n, const void* a, const void* b, const void* c) {
  const auto al = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return n % 8 == 0 && al(a) && al(b) && al(c);
}

}  // namespace

void nchw_to_nhwc(const uint16_t* in, int64_t nb, int64_t c, int64_t hw, uint16_t* out, cudaStream_t s) {
  const int64_t n = nb * c * hw;
  nchw_to_nhwc_kernel<<<blocks_for(n, 256), 256, 0, s>>>(in, nb, c, hw, out);
  SAT_CUDA_LAUNCHED("nchw_to_nhwc_kernel");
}

void nhwc_to_nchw(const uint16_t* in, int64_t nb, int64_t c, int64_t hw, uint16_t* out, cudaStream_t s) {
  const int64_t n = nb * c * hw;
  nhwc_to_nchw_kernel<<<blocks_for(n, 256), 256, 0, s>>>(in, nb, c, hw, out);
  SAT_CUDA_LAUNCHED("nhwc_to_nchw_kernel");
}

void pad_rows(const uint16_t* in, int64_t rows, int64_t cols, uint16_t* out, int64_t ldo, cudaStream_t s) {
  pad_rows_kernel<<<blocks_for(rows * ldo, 256), 256, 0, s>>>(in, rows, cols, out, ldo);
  SAT_CUDA_LAUNCHED("pad_rows_kernel");
}

void bias_round(const float* acc, int64_t lda, const float* bias, int64_t rows, int64_t c, uint16_t* y, cudaStream_t s) {
  bias_round_kernel<<<blocks_for(rows * c, 256), 256, 0, s>>>(acc, lda, bias, rows, c, y);
  SAT_CUDA_LAUNCHED("bias_round_kernel");
}

int64_t column_partials(int64_t rows, int64_t c) { return 2 * chunks_for(rows, c) * c + 2 * c; }

void bias_grad(const uint16_t* dy, int64_t rows, int64_t c, double* partial, float* grad, cudaStream_t s) {
  const int64_t chunks = chunks_for(rows, c);
  column_partials_launch(2, dy, nullptr, rows, c, chunks, nullptr, nullptr, partial, s);
  const Launch f = finish_launch(c);
  bias_grad_finish<<<f.grid, f.block, 0, s>>>(partial, chunks, c, grad);
  SAT_CUDA_LAUNCHED("bias_grad_finish");
}

bool bn_relu_fusable(int64_t rows, int64_t c, const void* x, const void* y) { return c % 8 == 0 && vec8(rows * c, x, y, y); }

void bn_forward_train(const uint16_t* x, int64_t rows, int64_t c, double eps, double momentum, const float* gamma,
                      const float* beta, float* running_mean, float* running_var, double* mean, double* invstd,
                      double* partial, uint16_t* y, cudaStream_t s, bool relu, int64_t given_chunks) {
  const int64_t chunks = given_chunks > 0 ? given_chunks : chunks_for(rows, c);
  if (relu && !bn_relu_fusable(rows, c, x, y)) throw Error("bn_forward_train: a fused ReLU needs c % 8 == 0 and aligned rows");
  if (given_chunks <= 0) column_partials_launch(0, x, nullptr, rows, c, chunks, nullptr, nullptr, partial, s);
  const Launch f = finish_launch(c);
  bn_stats_finish<<<f.grid, f.block, 0, s>>>(partial, chunks, c, rows, eps, momentum, running_mean, running_var, mean,
                                             invstd);
  SAT_CUDA_LAUNCHED("bn_stats_finish");
  if (bn_relu_fusable(rows, c, x, y)) {
    check32(rows * c, "bn_forward_train");
    const Launch g = channel_grid(rows, c / 8);
    bn_apply_train8<<<g.grid, g.block, 0, s>>>(reinterpret_cast<const uint4*>(x), static_cast<int>(rows),
                                               static_cast<int>(c / 8), mean, invstd, gamma, beta, relu,
                                               reinterpret_cast<uint4*>(y));
    SAT_CUDA_LAUNCHED("bn_apply_train8");
    return;
  }
  if (c % 2 == 0) {
    bn_apply_train2<<<blocks_for(rows * c / 2, 256), 256, 0, s>>>(reinterpret_cast<const uint32_t*>(x), rows, c, mean,
                                                                  invstd, gamma, beta, reinterpret_cast<uint32_t*>(y));
    SAT_CUDA_LAUNCHED("bn_apply_train2");
    return;
  }
  bn_apply_train<<<blocks_for(rows * c, 256), 256, 0, s>>>(x, rows, c, mean, invstd, gamma, beta, y);
  SAT_CUDA_LAUNCHED("bn_apply_train");
}

void bn_forward_eval(const uint16_t* x, int64_t rows, int64_t c, double eps, const float* gamma, const float* beta,
                     const float* running_mean, const float* running_var, uint16_t* y, cudaStream_t s, bool relu) {
  bn_apply_eval<<<blocks_for(rows * c, 256), 256, 0, s>>>(x, rows, c, eps, gamma, beta, running_mean, running_var,
                                                          relu, y);
  SAT_CUDA_LAUNCHED("bn_apply_eval");
}

void bn_backward(const uint16_t* x, const uint16_t* dy, int64_t rows, int64_t c, const double* mean,
                 const double* invstd, const float* gamma, float* gamma_grad, float* beta_grad, double* partial,
                 uint16_t* dx, cudaStream_t s, const uint16_t* relu_y) {
  const bool by8 = bn_relu_fusable(rows, c, x, dy) && vec8(rows * c, dx, relu_y, relu_y);
  if (relu_y && !by8) throw Error("bn_backward: a fused ReLU needs c % 8 == 0 and aligned rows");
  const int64_t chunks = chunks_for(rows, c);
  column_partials_launch(1, x, dy, rows, c, chunks, mean, invstd, partial, s, relu_y);
  double* coef = partial + 2 * chunks * c;
  const Launch f = finish_launch(c);
  bn_back_finish<<<f.grid, f.block, 0, s>>>(partial, chunks, c, rows, gamma_grad, beta_grad, coef);
  SAT_CUDA_LAUNCHED("bn_back_finish");
  if (by8) {
    check32(rows * c, "bn_backward");
    const Launch g = channel_grid(rows, c / 8);
    bn_back_apply8<<<g.grid, g.block, 0, s>>>(
        reinterpret_cast<const uint4*>(x), reinterpret_cast<const uint4*>(dy), reinterpret_cast<const uint4*>(relu_y),
        static_cast<int>(rows), static_cast<int>(c / 8), mean, invstd, gamma, coef, reinterpret_cast<uint4*>(dx));
    SAT_CUDA_LAUNCHED("bn_back_apply8");
    return;
  }
  if (c % 2 == 0) {
    bn_back_apply2<<<blocks_for(rows * c / 2, 256), 256, 0, s>>>(reinterpret_cast<const uint32_t*>(x),
                                                                 reinterpret_cast<const uint32_t*>(dy), rows, c, mean,
                                                                 invstd, gamma, coef, reinterpret_cast<uint32_t*>(dx));
    SAT_CUDA_LAUNCHED("bn_back_apply2");
    return;
  }
  bn_back_apply<<<blocks_for(rows * c, 256), 256, 0, s>>>(x, dy, rows, c, mean, invstd, gamma, coef, dx);
  SAT_CUDA_LAUNCHED("bn_back_apply");
}

void relu_forward(const uint16_t* x, int64_t n, uint16_t* y, cudaStream_t s) {
  if (vec8(n, x, y, y)) {
    relu8_kernel<<<blocks_for(n / 8, 256), 256, 0, s>>>(reinterpret_cast<const uint4*>(x), n / 8, reinterpret_cast<uint4*>(y));
    SAT_CUDA_LAUNCHED("relu8_kernel");
    return;
  }
  relu_kernel<<<blocks_for(n, 256), 256, 0, s>>>(x, n, y);
  SAT_CUDA_LAUNCHED("relu_kernel");
}

void relu_backward(const uint16_t* y, const uint16_t* dy, int64_t n, uint16_t* dx, cudaStream_t s) {
  if (vec8(n, y, dy, dx)) {
    relu_back8_kernel<<<blocks_for(n / 8, 256), 256, 0, s>>>(reinterpret_cast<const uint4*>(y),
                                                             reinterpret_cast<const uint4*>(dy), n / 8,
                                                             reinterpret_cast<uint4*>(dx));
    SAT_CUDA_LAUNCHED("relu_back8_kernel");
    return;
  }
  relu_back_kernel<<<blocks_for(n, 256), 256, 0, s>>>(y, dy, n, dx);
  SAT_CUDA_LAUNCHED("relu_back_kernel");
}

// The residual join's kernels (add_kernel): 16-byte accesses where every array allows them.
static void add_join(const uint16_t* a, const uint16_t* b, const uint16_t* gate, int64_t n, bool relu, uint16_t* out,
                     cudaStream_t s) {
  if (vec8(n, a, b, out) && (!gate || vec8(n, gate, gate, gate))) {
    add8_kernel<<<blocks_for(n / 8, 256), 256, 0, s>>>(reinterpret_cast<const uint4*>(a), reinterpret_cast<const uint4*>(b),
                                                       reinterpret_cast<const uint4*>(gate), n / 8, relu,
                                                       reinterpret_cast<uint4*>(out));
    SAT_CUDA_LAUNCHED("add8_kernel");
    return;
  }
  add_kernel<<<blocks_for(n, 256), 256, 0, s>>>(a, b, gate, n, relu, out);
  SAT_CUDA_LAUNCHED("add_kernel");
}

void add_round(const uint16_t* a, const uint16_t* b, int64_t n, uint16_t* out, cudaStream_t s, bool relu) {
  add_join(a, b, nullptr, n, relu, out, s);
}

void add_gated(const uint16_t* a, const uint16_t* dy, const uint16_t* y, int64_t n, uint16_t* out, cudaStream_t s) {
  add_join(a, dy, y, n, false, out, s);
}

void maxpool_forward(const uint16_t* x, const PoolGeometry& g, int64_t nb, uint16_t* y, int32_t* argmax, cudaStream_t s) {
  const int64_t n = nb * g.oh * g.ow * g.c;
  maxpool_kernel<<<blocks_for(n, 256), 256, 0, s>>>(x, g, nb, y, argmax);
  SAT_CUDA_LAUNCHED("maxpool_kernel");
}

void maxpool_backward(const uint16_t* dy, const int32_t* argmax, const PoolGeometry& g, int64_t nb, uint16_t* dx,
                      cudaStream_t s) {
  const int64_t n = nb * g.h * g.w * g.c;
  maxpool_back_kernel<<<blocks_for(n, 256), 256, 0, s>>>(dy, argmax, g, nb, dx);
  SAT_CUDA_LAUNCHED("maxpool_back_kernel");
}

void avgpool_forward(const uint16_t* x, const PoolGeometry& g, int64_t nb, uint16_t* y, cudaStream_t s) {
  const int64_t n = nb * g.oh * g.ow * g.c;
  avgpool_kernel<<<blocks_for(n, 256), 256, 0, s>>>(x, g, nb, y);
  SAT_CUDA_LAUNCHED("avgpool_kernel");
}

void avgpool_backward(const uint16_t* dy, const PoolGeometry& g, int64_t nb, uint16_t* dx, cudaStream_t s) {
  const int64_t n = nb * g.h * g.w * g.c;
  avgpool_back_kernel<<<blocks_for(n, 256), 256, 0, s>>>(dy, g, nb, dx);
  SAT_CUDA_LAUNCHED("avgpool_back_kernel");
}

void gap_forward(const uint16_t* x, int64_t nb, int64_t hw, int64_t c, uint16_t* y, cudaStream_t s) {
  gap_kernel<<<blocks_for(nb * c, 128), 128, 0, s>>>(x, nb, hw, c, y);
  SAT_CUDA_LAUNCHED("gap_kernel");
}

void gap_backward(const uint16_t* dy, int64_t nb, int64_t hw, int64_t c, uint16_t* dx, cudaStream_t s) {
  gap_back_kernel<<<blocks_for(nb * hw * c, 256), 256, 0, s>>>(dy, nb, hw, c, dx);
  SAT_CUDA_LAUNCHED("gap_back_kernel");
}

void bf16_rows_to_f32(const uint16_t* in, int64_t n, float* out, cudaStream_t s) {
  bf16_to_f32_rows<<<blocks_for(n, 256), 256, 0, s>>>(in, n, out);
  SAT_CUDA_LAUNCHED("bf16_to_f32_rows");
}

void f32_to_bf16(const float* in, int64_t n, uint16_t* out, cudaStream_t s) {
  f32_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, s>>>(in, n, out);
  SAT_CUDA_LAUNCHED("f32_to_bf16_kernel");
}

void loss_sum(const double* row_loss, const int* row_correct, int64_t b, double* loss, int* correct, cudaStream_t s) {
  loss_sum_kernel<<<1, 1, 0, s>>>(row_loss, row_correct, b, loss, correct);
  SAT_CUDA_LAUNCHED("loss_sum_kernel");
}

void flag_nonfinite(const float* v, int64_t n, int* flag, cudaStream_t s) {
  if (n <= 0) return;
  nonfinite_kernel<<<blocks_for(n, 256), 256, 0, s>>>(v, n, flag);
  SAT_CUDA_LAUNCHED("nonfinite_kernel");
}

}  // namespace sat::cuda
