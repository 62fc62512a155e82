// The optimizer step on the device: SGD with momentum and weight decay plus the SR-STE term, in the
// CPU's operation order with explicit round-to-nearest operations (no FMA contraction), so that the
// same gradients give the same weights as host/src/optimizer.cpp.
#include <algorithm>

#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda {

namespace {

__global__ void sgd_kernel(float* w, float* v, const float* g, const uint8_t* mask, int64_t n, float lr,
                           float mu, float wd, float lambda, int* nonfinite) {
  bool bad = false;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float wi = w[i];
    float gi = __fadd_rn(g[i], __fmul_rn(wd, wi));
    if (mask && !mask[i]) gi = __fadd_rn(gi, __fmul_rn(lambda, wi));
    const float vi = __fadd_rn(__fmul_rn(mu, v[i]), gi);
    v[i] = vi;
    const float wn = __fsub_rn(wi, __fmul_rn(lr, vi));
    w[i] = wn;
    bad |= !isfinite(wn);
  }
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) atomicExch(nonfinite, 1);
}

}  // namespace

void sgd_update(float* w, float* v, const float* g, const uint8_t* mask_f, int64_t n, float lr, float mu,
                float wd, float lambda, int* nonfinite, cudaStream_t stream) {
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>(ceil_div(n, 256), 132 * 8);
  sgd_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(w, v, g, mask_f, n, lr, mu, wd, lambda, nonfinite);
  SAT_CUDA_LAUNCHED("sgd_kernel");
}

}  // namespace sat::cuda
