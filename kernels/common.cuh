#pragma once
// Device-side pieces every kernel file shares. The FP32 <-> BF16 conversions are the contract's own
// (sat/arch/bf16_bits.hpp, __host__ __device__), so every backend rounds with the same code.
#include <cuda_bf16.h>   // __nv_bfloat162 for the packed conversions in pregen.cu

#include "sat/arch/bf16_bits.hpp"

#include "cuda_check.hpp"

namespace sat::cuda {

// The shared-memory address of a generic pointer into shared memory, as PTX's shared-space
// operands (cp.async, ldmatrix, mbarrier, bulk copies) take it.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

}  // namespace sat::cuda
