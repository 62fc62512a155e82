// Layout and type conversions between the host layers' FP32 feature-major arrays and the BF16
// sample-major operands of the products (32 x 32 tiles through shared memory, coalesced both ways).
#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda {

namespace {

constexpr int kTile = 32;

// in [feat][cols] FP32 -> out [cols][ld_out] BF16; zero for feat <= f < ld_out.
__global__ void fm_to_rm_bf16_kernel(const float* in, int64_t feat, int64_t cols, uint16_t* out, int64_t ld_out) {
  __shared__ float t[kTile][kTile + 1];
  const int64_t f0 = static_cast<int64_t>(blockIdx.y) * kTile, c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  for (int r = threadIdx.y; r < kTile; r += blockDim.y) {
    const int64_t f = f0 + r, c = c0 + threadIdx.x;
    t[r][threadIdx.x] = (f < feat && c < cols) ? in[f * cols + c] : 0.0f;
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += blockDim.y) {
    const int64_t c = c0 + r, f = f0 + threadIdx.x;
    if (c < cols && f < ld_out) out[c * ld_out + f] = sat::f32_to_bf16_bits(t[threadIdx.x][r]);
  }
}

// in [cols][ld_in] FP32 -> out [feat][cols] FP32.
__global__ void rm_to_fm_kernel(const float* in, int64_t cols, int64_t feat, int64_t ld_in, float* out) {
  __shared__ float t[kTile][kTile + 1];
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kTile, f0 = static_cast<int64_t>(blockIdx.x) * kTile;
  for (int r = threadIdx.y; r < kTile; r += blockDim.y) {
    const int64_t c = c0 + r, f = f0 + threadIdx.x;
    t[r][threadIdx.x] = (c < cols && f < feat) ? in[c * ld_in + f] : 0.0f;
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += blockDim.y) {
    const int64_t f = f0 + r, c = c0 + threadIdx.x;
    if (f < feat && c < cols) out[f * cols + c] = t[threadIdx.x][r];
  }
}

__global__ void rm_to_rm_bf16_kernel(const float* in, int64_t rows, int64_t cols, uint16_t* out, int64_t ld_out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * ld_out) return;
  const int64_t r = i / ld_out, c = i % ld_out;
  out[i] = c < cols ? sat::f32_to_bf16_bits(in[r * cols + c]) : uint16_t{0};
}

__global__ void bf16_to_f32_kernel(const uint16_t* in, float* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = sat::bf16_bits_to_f32(in[i]);
}

}  // namespace

void fm_f32_to_rm_bf16(const float* in, int64_t feat, int64_t cols, uint16_t* out, int64_t ld_out,
                       cudaStream_t stream) {
  if (ld_out < feat) throw Error("fm_f32_to_rm_bf16: leading dimension below the feature count");
  const dim3 grid(static_cast<unsigned>(ceil_div(cols, kTile)), static_cast<unsigned>(ceil_div(ld_out, kTile)));
  fm_to_rm_bf16_kernel<<<grid, dim3(kTile, 8), 0, stream>>>(in, feat, cols, out, ld_out);
  SAT_CUDA_LAUNCHED("fm_to_rm_bf16_kernel");
}

void rm_f32_to_fm_f32(const float* in, int64_t cols, int64_t feat, int64_t ld_in, float* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(ceil_div(feat, kTile)), static_cast<unsigned>(ceil_div(cols, kTile)));
  rm_to_fm_kernel<<<grid, dim3(kTile, 8), 0, stream>>>(in, cols, feat, ld_in, out);
  SAT_CUDA_LAUNCHED("rm_to_fm_kernel");
}

void rm_f32_to_rm_bf16(const float* in, int64_t rows, int64_t cols, uint16_t* out, int64_t ld_out, cudaStream_t stream) {
  if (ld_out < cols) throw Error("rm_f32_to_rm_bf16: leading dimension below the column count");
  const int64_t n = rows * ld_out;
  rm_to_rm_bf16_kernel<<<static_cast<unsigned>(ceil_div(n, 256)), 256, 0, stream>>>(in, rows, cols, out, ld_out);
  SAT_CUDA_LAUNCHED("rm_to_rm_bf16_kernel");
}

void bf16_to_f32(const uint16_t* in, float* out, int64_t n, cudaStream_t stream) {
  bf16_to_f32_kernel<<<static_cast<unsigned>(ceil_div(n, 256)), 256, 0, stream>>>(in, out, n);
  SAT_CUDA_LAUNCHED("bf16_to_f32_kernel");
}

}  // namespace sat::cuda
