#pragma once
// Device-side pieces every kernel file shares. The FP32 <-> BF16 conversions are the contract's own
// (sat/arch/bf16_bits.hpp, __host__ __device__), so every backend rounds with the same code.
#include <cuda_bf16.h>   // __nv_bfloat162 for the packed conversions in pregen.cu

#include <string>

#include "sat/arch/bf16_bits.hpp"

#include "cuda_check.hpp"

namespace sat::cuda {

// The shared-memory address of a generic pointer into shared memory, as PTX's shared-space
// operands (cp.async, ldmatrix, mbarrier, bulk copies) take it.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// The resident step's element-wise kernels (layer_kernels.cu, transformer_kernels.cu) index with
// 32 bits: 64-bit division and remainder are emulated on the GPU and cost several times the
// arithmetic of these memory-bound kernels. Every entry point checks that its element count fits
// (check32).
#define SAT_GRID_LOOP(i, n) \
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < static_cast<int>(n); i += gridDim.x * blockDim.x)

inline void check32(int64_t n, const char* what) {
  if (n >= (int64_t{1} << 31)) {
    throw Error(std::string(what) + ": " + std::to_string(n) + " elements, more than the resident kernels' 2^31 - 1");
  }
}

// Blocks of `threads` for a SAT_GRID_LOOP over n elements, n checked to fit 32 bits.
inline unsigned grid_blocks32(int64_t n, int threads, const char* what) {
  check32(n, what);
  return grid_stride_blocks(n, threads, 16);
}

}  // namespace sat::cuda
