#pragma once
// The two things every implementation (host library, HLS kernel, CUDA kernels) needs before any
// numerics header: SAT_HD, which marks a function __host__ __device__ under nvcc, and the FP32 bit
// casts. Dependency-free C++17 (no std::bit_cast) so that Vitis HLS and nvcc compile it.
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SAT_HD __host__ __device__
#else
#define SAT_HD
#endif

namespace sat {

SAT_HD inline uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
SAT_HD inline float f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

}  // namespace sat
