// The channels-last convolution lowering of the GPU-resident step (layer_ops.hpp): im2col from the
// BF16 images into the products' input rows, and col2im from BP's FP32 rows into the BF16 input
// gradient, each pixel summed in the host col2im's order. Two kernels each:
//
// - the fast ones. im2col copies 16-byte runs of 8 channels (cin % 8 == 0), many independent loads
//   in flight; col2im streams each image's output rows once, in contiguous runs, from the last row
//   to the first, and keeps a chunk of channels of the whole input image in shared memory.
// - the row kernels, for what the fast ones do not take (cin % 8 != 0: a stem or a patch embedding
//   on 1 or 3 channels; an image too large for shared memory), and for comparison
//   (bench/cuda_bench --lowering times both). SAT_CUDA_LOWERING=fast|rows forces one kind.
// Both give the same bits as the channels-first kernels (tests/cuda/cuda_layers_test.cpp, on an
// H100 on 2026-12-07); which kind runs by default is chosen per kernel below (kFast...ByDefault).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.cuh"
#include "layer_ops.hpp"

namespace sat::cuda {

namespace {

using sat::f32_to_bf16_bits;

// `rows` output rows (output positions) per block. Each warp copies one (row, kernel position)
// pair at a time, its lanes over the channels: the reads are coalesced channel runs, the index
// arithmetic (integer divisions, slow on the GPU) is per pair rather than per element. The row is
// assembled in shared memory in the lowered column order (c, ky, kx) and leaves in 16-byte stores
// (ldo is a multiple of 8).
__global__ void im2col_nhwc_kernel(const uint16_t* x, ConvGeometry g, int64_t nq, uint16_t* out, int ldo, int rows) {
  extern __shared__ uint4 im2col_smem[];
  uint16_t* srow = reinterpret_cast<uint16_t*>(im2col_smem);
  const int kdim = static_cast<int>(g.kdim()), ohw = static_cast<int>(g.oh * g.ow), k = static_cast<int>(g.k);
  const int kk2 = k * k, ow = static_cast<int>(g.ow), h = static_cast<int>(g.h), w = static_cast<int>(g.w);
  const int cin = static_cast<int>(g.cin), s = static_cast<int>(g.s), p = static_cast<int>(g.p);
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * rows;
  const int nrows = static_cast<int>(q0 + rows <= nq ? rows : nq - q0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  for (int pr = warp; pr < nrows * kk2; pr += nwarps) {
    const int rr = pr / kk2, t = pr - rr * kk2, ky = t / k, kx = t - ky * k;
    const int q = static_cast<int>(q0) + rr, b = q / ohw, r = q - b * ohw, oy = r / ow, ox = r - oy * ow;
    const int iy = oy * s - p + ky, ix = ox * s - p + kx;
    uint16_t* dst = srow + rr * ldo + t;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
      const uint16_t* src = x + ((static_cast<int64_t>(b) * h + iy) * w + ix) * cin;
      for (int c = lane; c < cin; c += 32) dst[c * kk2] = src[c];
    } else {
      for (int c = lane; c < cin; c += 32) dst[c * kk2] = 0;
    }
  }
  for (int rr = 0; rr < nrows; ++rr)
    for (int j = kdim + threadIdx.x; j < ldo; j += blockDim.x) srow[rr * ldo + j] = 0;
  __syncthreads();
  uint4* dst = reinterpret_cast<uint4*>(out + q0 * ldo);
  for (int i = threadIdx.x; i < nrows * ldo / 8; i += blockDim.x) dst[i] = im2col_smem[i];
}

// As col2im_kernel (im2col.cu): each pixel the sum over (ky, kx) ascending, the host col2im's
// order. A block takes one image row iy of one image and kC2I channels: per ky, the output row that
// reaches iy through it is staged in shared memory (its ky slice, read in runs), then every
// thread adds the kx terms to the pixels it owns (the same pixels at every step: no races).
// K, S: the kernel size and stride when known at compile time (the common 3x3 and 1x1 at strides 1
// and 2), so that the divisions by them become multiplications; 0: taken from g.
constexpr int kC2I = 32;
template <int K, int S>
__global__ void col2im_rows_kernel(const float* dcol, int ldc, ConvGeometry g, uint16_t* dx) {
  extern __shared__ float c2i_smem[];
  const int k = K ? K : static_cast<int>(g.k), s = S ? S : static_cast<int>(g.s), p = static_cast<int>(g.p);
  const int oh = static_cast<int>(g.oh), ow = static_cast<int>(g.ow), h = static_cast<int>(g.h), w = static_cast<int>(g.w);
  const int cin = static_cast<int>(g.cin);
  const int c0 = blockIdx.x * kC2I, iy = blockIdx.y, b = blockIdx.z;
  float* acc = c2i_smem;              // [w][kC2I]
  float* tile = c2i_smem + w * kC2I;  // [ow][kC2I][k]: row oy, slice ky
  for (int i = threadIdx.x; i < w * kC2I; i += blockDim.x) acc[i] = 0.0f;
  for (int ky = 0; ky < k; ++ky) {
    const int ty = iy + p - ky;
    if (ty < 0 || ty % s != 0 || ty / s >= oh) continue;
    const int oy = ty / s;
    __syncthreads();
    const float* rowbase = dcol + (static_cast<int64_t>(b) * oh + oy) * ow * ldc;
    for (int i = threadIdx.x; i < ow * kC2I * k; i += blockDim.x) {
      const int ox = i / (kC2I * k), r = i - ox * (kC2I * k), cc = r / k, kx = r - cc * k, c = c0 + cc;
      tile[i] = c < cin ? rowbase[static_cast<int64_t>(ox) * ldc + (c * k + ky) * k + kx] : 0.0f;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < w * kC2I; i += blockDim.x) {
      const int ix = i / kC2I, cc = i - ix * kC2I;
      float a = acc[i];
      for (int kx = 0; kx < k; ++kx) {
        const int tx = ix + p - kx;
        if (tx < 0 || tx % s != 0 || tx / s >= ow) continue;
        a = __fadd_rn(a, tile[((tx / s) * kC2I + cc) * k + kx]);
      }
      acc[i] = a;
    }
  }
  for (int i = threadIdx.x; i < w * kC2I; i += blockDim.x) {
    const int ix = i / kC2I, cc = i - ix * kC2I, c = c0 + cc;
    if (c < cin) dx[((static_cast<int64_t>(b) * h + iy) * w + ix) * cin + c] = f32_to_bf16_bits(acc[i]);
  }
}

// One block per `rows` output rows. Each thread copies one 16-byte run: 8 channels of one (row,
// ky, kx), scattered into the row's (c, ky, kx) column order in shared memory; the rows leave in
// 16-byte stores. kx, ky vary fastest across the threads, so a warp's loads are runs of the same
// pixel neighbourhood. K: the kernel size when known at compile time (0: from g).
template <int K>
__global__ void im2col_vec_kernel(const uint16_t* x, ConvGeometry g, int64_t nq, uint16_t* out, int ldo, int rows) {
  extern __shared__ uint4 im2col_vec_smem[];
  uint16_t* srow = reinterpret_cast<uint16_t*>(im2col_vec_smem);
  const int k = K ? K : static_cast<int>(g.k), kk2 = k * k, kdim = static_cast<int>(g.kdim());
  const int ohw = static_cast<int>(g.oh * g.ow), ow = static_cast<int>(g.ow), h = static_cast<int>(g.h);
  const int w = static_cast<int>(g.w), cin = static_cast<int>(g.cin), s = static_cast<int>(g.s);
  const int p = static_cast<int>(g.p), nch = cin / 8;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * rows;
  const int nrows = static_cast<int>(q0 + rows <= nq ? rows : nq - q0);
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  for (int i = threadIdx.x; i < nrows * nch * kk2; i += blockDim.x) {
    const int t = i % kk2, pair = i / kk2, ch = pair % nch, rr = pair / nch, ky = t / k, kx = t - ky * k;
    const int q = static_cast<int>(q0) + rr, b = q / ohw, r = q - b * ohw, oy = r / ow, ox = r - oy * ow;
    const int iy = oy * s - p + ky, ix = ox * s - p + kx;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = __ldg(xv + ((static_cast<int64_t>(b) * h + iy) * w + ix) * nch + ch);
    uint16_t e[8];
    memcpy(e, &v, sizeof e);
    uint16_t* dst = srow + rr * ldo + ch * 8 * kk2 + t;
#pragma unroll
    for (int j = 0; j < 8; ++j) dst[j * kk2] = e[j];
  }
  for (int rr = 0; rr < nrows; ++rr)
    for (int j = kdim + threadIdx.x; j < ldo; j += blockDim.x) srow[rr * ldo + j] = 0;
  __syncthreads();
  uint4* dst = reinterpret_cast<uint4*>(out + q0 * ldo);
  for (int i = threadIdx.x; i < nrows * ldo / 8; i += blockDim.x) dst[i] = im2col_vec_smem[i];
}

// One block per (chunk of cc channels, image). The block walks the image's output rows from the
// last to the first; each row's FP32 entries of the chunk, cc*k*k contiguous floats per output
// pixel, are read once into shared memory, then each thread adds the row's terms into the input
// pixels it owns, in an accumulator image [h][w][cc] in shared memory. Output row oy reaches input
// row oy*s - p + ky through ky, so descending rows hand every input pixel its terms in ascending
// ky, and kx ascends within: the host col2im's order, from 0.0f, with the same rounded additions.
// Within one output row no two threads touch the same accumulator (each input row takes one ky).
template <int K, int S>
__global__ void col2im_image_kernel(const float* dcol, int ldc, ConvGeometry g, int cc, uint16_t* dx) {
  extern __shared__ float c2i_image_smem[];
  const int k = K ? K : static_cast<int>(g.k), s = S ? S : static_cast<int>(g.s), kk2 = k * k;
  const int p = static_cast<int>(g.p), oh = static_cast<int>(g.oh), ow = static_cast<int>(g.ow);
  const int h = static_cast<int>(g.h), w = static_cast<int>(g.w), cin = static_cast<int>(g.cin);
  const int c0 = blockIdx.x * cc, b = blockIdx.y, ncc = min(cc, cin - c0), run = ncc * kk2;
  float* acc = c2i_image_smem;             // [h*w][ncc]
  float* tile = c2i_image_smem + h * w * cc;   // [ow][run]: output row oy, the chunk's columns
  for (int i = threadIdx.x; i < h * w * ncc; i += blockDim.x) acc[i] = 0.0f;
  for (int oy = oh - 1; oy >= 0; --oy) {
    __syncthreads();
    const float* row = dcol + (static_cast<int64_t>(b) * oh + oy) * ow * ldc + static_cast<int64_t>(c0) * kk2;
    for (int i = threadIdx.x; i < ow * run; i += blockDim.x) {
      const int ox = i / run, j = i - ox * run;
      tile[i] = __ldg(row + static_cast<int64_t>(ox) * ldc + j);
    }
    __syncthreads();
    for (int ky = 0; ky < k; ++ky) {
      const int iy = oy * s - p + ky;
      if (iy < 0 || iy >= h) continue;
      float* arow = acc + iy * w * ncc;
      for (int i = threadIdx.x; i < w * ncc; i += blockDim.x) {
        const int ix = i / ncc, c = i - ix * ncc;
        float a = arow[i];
#pragma unroll
        for (int kx = 0; kx < k; ++kx) {
          const int tx = ix + p - kx;
          if (tx < 0 || tx % s != 0 || tx / s >= ow) continue;
          a = __fadd_rn(a, tile[(tx / s) * run + c * kk2 + ky * k + kx]);
        }
        arow[i] = a;
      }
    }
  }
  __syncthreads();
  uint16_t* out = dx + static_cast<int64_t>(b) * h * w * cin + c0;
  for (int i = threadIdx.x; i < h * w * ncc; i += blockDim.x) {
    const int pix = i / ncc, c = i - pix * ncc;
    out[static_cast<int64_t>(pix) * cin + c] = f32_to_bf16_bits(acc[i]);
  }
}

// What LoweringKernels::configured takes: SAT_CUDA_LOWERING=fast or =rows (read once) forces one
// kind for both kernels; unset, each takes the faster of its two as measured on an H100
// (2026-12-07, `cuda_bench --lowering`, ResNet-18's convolutions at batch 512, per step): im2col's
// fast kernel (2.14 ms against the row kernel's 6.35 ms), col2im's row kernel (5.95 ms against the
// fast kernel's 9.40 ms). Both kinds give the same bits (CudaLayers.LoweringMatches...).
constexpr bool kFastIm2colByDefault = true;
constexpr bool kFastCol2imByDefault = false;
enum class Configured { unset, fast, rows };
Configured configured_kind() {
  static const Configured c = [] {
    const char* v = std::getenv("SAT_CUDA_LOWERING");
    if (v && std::strcmp(v, "fast") == 0) return Configured::fast;
    if (v && std::strcmp(v, "rows") == 0) return Configured::rows;
    if (v && *v) throw Error(std::string("SAT_CUDA_LOWERING='") + v + "': expected 'fast' or 'rows'");
    return Configured::unset;
  }();
  return c;
}

bool use_fast(LoweringKernels k, bool fast_by_default) {
  if (k != LoweringKernels::configured) return k == LoweringKernels::fast;
  const Configured c = configured_kind();
  return c == Configured::unset ? fast_by_default : c == Configured::fast;
}

constexpr size_t kLoweringSmem = 48 * 1024;

// The operand checks are the callers' (im2col_nhwc, col2im_nhwc).
void im2col_rows(const uint16_t* x, const ConvGeometry& g, int64_t nb, uint16_t* out, int64_t ldo, cudaStream_t s) {
  check32(nb * g.oh * g.ow * ldo, "im2col_nhwc");
  check32(nb * g.h * g.w * g.cin, "im2col_nhwc");
  const int64_t nq = nb * g.oh * g.ow;
  const int rows = static_cast<int>(std::max<int64_t>(1, 4096 / ldo));
  const size_t smem = static_cast<size_t>(rows) * ldo * 2;
  if (smem > 48 * 1024) throw Error("im2col_nhwc: a lowered row of " + std::to_string(ldo) + " columns exceeds shared memory");
  im2col_nhwc_kernel<<<static_cast<unsigned>(ceil_div(nq, rows)), 256, smem, s>>>(x, g, nq, out, static_cast<int>(ldo), rows);
  SAT_CUDA_LAUNCHED("im2col_nhwc_kernel");
}

void col2im_rows(const float* dcol, int64_t ldc, const ConvGeometry& g, int64_t nb, uint16_t* dx, cudaStream_t s) {
  check32(nb * g.h * g.w * g.cin, "col2im_nhwc");
  check32(nb * g.oh * g.ow * ldc, "col2im_nhwc");
  const size_t smem = static_cast<size_t>(g.w * kC2I + g.ow * kC2I * g.k) * 4;
  if (smem > 48 * 1024 || g.h > 65535 || nb > 65535) throw Error("col2im_nhwc: image too large for the row kernel");
  const dim3 grid(static_cast<unsigned>(ceil_div(g.cin, kC2I)), static_cast<unsigned>(g.h), static_cast<unsigned>(nb));
  const int ld = static_cast<int>(ldc);
  if (g.k == 3 && g.s == 1) col2im_rows_kernel<3, 1><<<grid, 256, smem, s>>>(dcol, ld, g, dx);
  else if (g.k == 3 && g.s == 2) col2im_rows_kernel<3, 2><<<grid, 256, smem, s>>>(dcol, ld, g, dx);
  else if (g.k == 1 && g.s == 1) col2im_rows_kernel<1, 1><<<grid, 256, smem, s>>>(dcol, ld, g, dx);
  else if (g.k == 1 && g.s == 2) col2im_rows_kernel<1, 2><<<grid, 256, smem, s>>>(dcol, ld, g, dx);
  else col2im_rows_kernel<0, 0><<<grid, 256, smem, s>>>(dcol, ld, g, dx);
  SAT_CUDA_LAUNCHED("col2im_nhwc_kernel");
}

}  // namespace

void im2col_nhwc(const uint16_t* x, const ConvGeometry& g, int64_t nb, uint16_t* out, int64_t ldo, cudaStream_t s,
                 LoweringKernels kernels) {
  if (ldo < g.kdim()) throw Error("im2col_nhwc: leading dimension below cin*k*k");
  if (ldo % 8 != 0) throw Error("im2col_nhwc: the leading dimension must be a multiple of 8");
  if (g.cin % 8 != 0 || !use_fast(kernels, kFastIm2colByDefault) || reinterpret_cast<uintptr_t>(x) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(out) % 16 != 0) {
    im2col_rows(x, g, nb, out, ldo, s);
    return;
  }
  check32(nb * g.oh * g.ow * ldo, "im2col_nhwc");
  check32(nb * g.h * g.w * g.cin, "im2col_nhwc");
  const int64_t nq = nb * g.oh * g.ow;
  const int rows = static_cast<int>(std::max<int64_t>(1, 12288 / ldo));
  const size_t smem = static_cast<size_t>(rows) * ldo * 2;
  if (smem > kLoweringSmem) throw Error("im2col_nhwc: a lowered row of " + std::to_string(ldo) + " columns exceeds shared memory");
  const unsigned grid = static_cast<unsigned>(ceil_div(nq, rows));
  if (g.k == 3) im2col_vec_kernel<3><<<grid, 256, smem, s>>>(x, g, nq, out, static_cast<int>(ldo), rows);
  else if (g.k == 1) im2col_vec_kernel<1><<<grid, 256, smem, s>>>(x, g, nq, out, static_cast<int>(ldo), rows);
  else im2col_vec_kernel<0><<<grid, 256, smem, s>>>(x, g, nq, out, static_cast<int>(ldo), rows);
  SAT_CUDA_LAUNCHED("im2col_vec_kernel");
}

void col2im_nhwc(const float* dcol, int64_t ldc, const ConvGeometry& g, int64_t nb, uint16_t* dx, cudaStream_t s,
                 LoweringKernels kernels) {
  if (ldc < g.kdim()) throw Error("col2im_nhwc: leading dimension below cin*k*k");
  // Channels per block: as many as the accumulator image and one output row's tile hold in
  // shared memory, a multiple of 8 where that leaves one.
  const int64_t per_channel = (g.h * g.w + g.ow * g.k * g.k) * 4;
  int64_t cc = std::min<int64_t>(g.cin, static_cast<int64_t>(kLoweringSmem) / per_channel);
  if (cc > 8) cc -= cc % 8;
  if (cc < 1 || !use_fast(kernels, kFastCol2imByDefault) || nb > 65535) {
    col2im_rows(dcol, ldc, g, nb, dx, s);
    return;
  }
  check32(nb * g.h * g.w * g.cin, "col2im_nhwc");
  check32(nb * g.oh * g.ow * ldc, "col2im_nhwc");
  const size_t smem = static_cast<size_t>(cc * per_channel);
  const dim3 grid(static_cast<unsigned>(ceil_div(g.cin, cc)), static_cast<unsigned>(nb));
  const int ld = static_cast<int>(ldc), c = static_cast<int>(cc);
  if (g.k == 3 && g.s == 1) col2im_image_kernel<3, 1><<<grid, 256, smem, s>>>(dcol, ld, g, c, dx);
  else if (g.k == 3 && g.s == 2) col2im_image_kernel<3, 2><<<grid, 256, smem, s>>>(dcol, ld, g, c, dx);
  else if (g.k == 1 && g.s == 1) col2im_image_kernel<1, 1><<<grid, 256, smem, s>>>(dcol, ld, g, c, dx);
  else if (g.k == 1 && g.s == 2) col2im_image_kernel<1, 2><<<grid, 256, smem, s>>>(dcol, ld, g, c, dx);
  else col2im_image_kernel<0, 0><<<grid, 256, smem, s>>>(dcol, ld, g, c, dx);
  SAT_CUDA_LAUNCHED("col2im_image_kernel");
}

}  // namespace sat::cuda
