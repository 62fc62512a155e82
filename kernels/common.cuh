#pragma once
// Device-side pieces every kernel file shares: the FP32 <-> BF16 conversions of DESIGN §4 (round to
// nearest even, subnormals flushed to signed zero, NaN kept), bit-identical to
// host/include/sat/bf16.hpp.
#include <cuda_bf16.h>

#include "cuda_check.hpp"

namespace sat::cuda {

__device__ __forceinline__ uint16_t f32_to_bf16_bits_dev(float f) {
  uint32_t u = __float_as_uint(f);
  const uint32_t exp = u & 0x7f800000u;
  if (exp == 0x7f800000u) return static_cast<uint16_t>((u >> 16) | ((u & 0x007fffffu) ? 0x0040u : 0u));
  if (exp == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

__device__ __forceinline__ float bf16_bits_to_f32_dev(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  return __uint_as_float(u);
}

__device__ __forceinline__ __nv_bfloat16 to_bf16_dev(float f) {
  return __ushort_as_bfloat16(f32_to_bf16_bits_dev(f));
}


}  // namespace sat::cuda
