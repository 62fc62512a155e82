// The optimizer step on the device: SGD with momentum and weight decay plus the SR-STE term, by the
// rule every backend shares (sat/sgd_rule.hpp), so that the same gradients give the same weights as
// host/src/optimizer.cpp. For the sparse weights the backend runs the same rule fused with
// pre-generation instead (update_pregen, pregen.cu).
#include "common.cuh"
#include "ops.hpp"
#include "sat/arch/sgd_rule.hpp"

namespace sat::cuda {

namespace {

__global__ void sgd_kernel(float* w, float* v, const float* g, const uint8_t* mask, int64_t n, SgdHyper h_arg,
                           const SgdHyper* h_dev, int* nonfinite) {
  const SgdHyper h = h_dev ? *h_dev : h_arg;
  bool bad = false;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float vi = v[i];
    const float wn = sgd_rule(w[i], g[i], vi, mask && !mask[i], h);
    v[i] = vi;
    w[i] = wn;
    bad |= !sgd_finite(wn);
  }
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) atomicExch(nonfinite, 1);
}

}  // namespace

void sgd_update(float* w, float* v, const float* g, const uint8_t* mask_f, int64_t n, const SgdHyper& h,
                int* nonfinite, cudaStream_t stream, const SgdHyper* h_dev) {
  if (n <= 0) return;
  sgd_kernel<<<grid_stride_blocks(n, 256, 8), 256, 0, stream>>>(w, v, g, mask_f, n, h, h_dev, nonfinite);
  SAT_CUDA_LAUNCHED("sgd_kernel");
}

}  // namespace sat::cuda
