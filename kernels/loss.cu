// Softmax cross-entropy on the device, one warp per sample, in double like the CPU's
// softmax_cross_entropy (host/src/model.cpp): max, sum of exp(z - max), loss, first argmax and
// dL/dz = (softmax - onehot) / batch.
#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda {

namespace {

__global__ void xent_kernel(const float* z, const int* labels, int64_t b, int64_t c, float* dz,
                            double* row_loss, int* row_correct) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (i >= b) return;
  const float* row = z + i * c;
  // first maximum: largest value, lowest index among equals
  float mx = -INFINITY;
  int64_t arg = c;
  for (int64_t j = lane; j < c; j += 32) {
    if (row[j] > mx || (row[j] == mx && j < arg)) {
      mx = row[j];
      arg = j;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, mx, o);
    const int64_t oa = __shfl_xor_sync(0xffffffffu, arg, o);
    if (om > mx || (om == mx && oa < arg)) {
      mx = om;
      arg = oa;
    }
  }
  double sum = 0;
  for (int64_t j = lane; j < c; j += 32) sum += exp(static_cast<double>(row[j] - mx));
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const int y = labels[i];
  if (lane == 0) {
    row_loss[i] = log(sum) - static_cast<double>(row[y] - mx);
    row_correct[i] = arg == y;
  }
  if (dz) {
    for (int64_t j = lane; j < c; j += 32) {
      const double p = exp(static_cast<double>(row[j] - mx)) / sum;
      dz[i * c + j] = static_cast<float>((p - (j == y ? 1.0 : 0.0)) / static_cast<double>(b));
    }
  }
}

}  // namespace

void softmax_xent(const float* logits, const int* labels, int64_t b, int64_t c, float* dlogits, double* row_loss,
                  int* row_correct, cudaStream_t stream) {
  const int warps = 8;
  xent_kernel<<<static_cast<unsigned>(ceil_div(b, warps)), warps * 32, 0, stream>>>(logits, labels, b, c, dlogits,
                                                                                   row_loss, row_correct);
  SAT_CUDA_LAUNCHED("xent_kernel");
}

}  // namespace sat::cuda
