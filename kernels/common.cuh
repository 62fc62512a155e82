#pragma once
// Device-side pieces every kernel file shares. The FP32 <-> BF16 conversions are the host's own
// (sat/bf16.hpp, __host__ __device__), so every backend rounds with the same code.
#include <cuda_bf16.h>

#include "sat/bf16.hpp"

#include "cuda_check.hpp"

namespace sat::cuda {

__device__ __forceinline__ __nv_bfloat16 to_bf16_dev(float f) {
  return __ushort_as_bfloat16(sat::f32_to_bf16_bits(f));
}


}  // namespace sat::cuda
