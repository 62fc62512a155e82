// Convolution lowering on the device, so that the `cuda` backend uploads raw images rather than the
// k*k times larger lowered matrix (docs/cuda.md). The layout is sat/conv_geometry.hpp's, the same
// the host conv2d layer builds; these write the products' operand layout (sample-major BF16 rows)
// and read their output layout (sample-major FP32 rows) directly.
#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda {

namespace {

// out[q][kk] = BF16(col[kk][q]) for kk < K, 0 for K <= kk < ld. One thread per output element,
// kk fastest: the writes are coalesced, the reads walk image rows.
__global__ void im2col_kernel(const float* x, ConvGeometry g, int64_t nb, uint16_t* out, int64_t ld) {
  const int64_t kdim = g.kdim(), ohw = g.oh * g.ow, total = nb * ohw * ld;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t q = i / ld, kk = i % ld;
    float v = 0.0f;
    if (kk < kdim) {
      const int64_t b = q / ohw, r = q % ohw, oy = r / g.ow, ox = r % g.ow;
      const int64_t c = kk / (g.k * g.k), t = kk % (g.k * g.k), ky = t / g.k, kx = t % g.k;
      const int64_t iy = oy * g.s - g.p + ky, ix = ox * g.s - g.p + kx;
      if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = x[((b * g.cin + c) * g.h + iy) * g.w + ix];
    }
    out[i] = sat::f32_to_bf16_bits(v);
  }
}

// dx[b][c][iy][ix] = the sum, over (ky, kx) in ascending order from 0, of the dcol entries im2col
// copied from that pixel: the host col2im's order, so that equal dcol give equal dx.
__global__ void col2im_kernel(const float* dcol, int64_t ld, ConvGeometry g, int64_t nb, float* dx) {
  const int64_t ohw = g.oh * g.ow, total = nb * g.cin * g.h * g.w;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ix = i % g.w, iy = (i / g.w) % g.h, c = (i / (g.w * g.h)) % g.cin, b = i / (g.w * g.h * g.cin);
    float sum = 0.0f;
    for (int64_t ky = 0; ky < g.k; ++ky) {
      const int64_t ty = iy + g.p - ky;
      if (ty < 0 || ty % g.s != 0 || ty / g.s >= g.oh) continue;
      const int64_t oy = ty / g.s;
      for (int64_t kx = 0; kx < g.k; ++kx) {
        const int64_t tx = ix + g.p - kx;
        if (tx < 0 || tx % g.s != 0 || tx / g.s >= g.ow) continue;
        const int64_t q = b * ohw + oy * g.ow + tx / g.s;
        sum = __fadd_rn(sum, dcol[q * ld + (c * g.k + ky) * g.k + kx]);
      }
    }
    dx[i] = sum;
  }
}

}  // namespace

void im2col_bf16(const float* x, const ConvGeometry& g, int64_t nb, uint16_t* out, int64_t ld_out, cudaStream_t stream) {
  if (ld_out < g.kdim()) throw Error("im2col_bf16: leading dimension below cin*k*k");
  const int64_t n = nb * g.oh * g.ow * ld_out;
  if (n == 0) return;
  im2col_kernel<<<grid_stride_blocks(n, 256, 16), 256, 0, stream>>>(x, g, nb, out, ld_out);
  SAT_CUDA_LAUNCHED("im2col_kernel");
}

void col2im_f32(const float* dcol, int64_t ld_dcol, const ConvGeometry& g, int64_t nb, float* dx, cudaStream_t stream) {
  if (ld_dcol < g.kdim()) throw Error("col2im_f32: leading dimension below cin*k*k");
  const int64_t n = nb * g.cin * g.h * g.w;
  if (n == 0) return;
  col2im_kernel<<<grid_stride_blocks(n, 256, 16), 256, 0, stream>>>(dcol, ld_dcol, g, nb, dx);
  SAT_CUDA_LAUNCHED("col2im_kernel");
}

}  // namespace sat::cuda
