#pragma once
// Error checks shared by the host-side CUDA code (plain C++): every failing CUDA call throws
// sat::Error naming the call, the place and the CUDA error.
#include <cuda_runtime.h>

#include <cstdint>

#include "sat/error.hpp"

namespace sat::cuda {

[[noreturn]] void throw_cuda(const char* what, cudaError_t e, const char* file, int line);

#define SAT_CUDA_CHECK(call)                                                               \
  do {                                                                                     \
    cudaError_t sat_e_ = (call);                                                           \
    if (sat_e_ != cudaSuccess) ::sat::cuda::throw_cuda(#call, sat_e_, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: configuration errors are reported at once.
#define SAT_CUDA_LAUNCHED(name) SAT_CUDA_CHECK(cudaPeekAtLastError())

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Multiprocessors of the current device (queried once).
int sm_count();
// Blocks of `threads` for a grid-stride loop over n elements: enough to cover n, at most
// `per_sm` blocks per multiprocessor.
inline unsigned grid_stride_blocks(int64_t n, int threads, int per_sm) {
  const int64_t cap = static_cast<int64_t>(sm_count()) * per_sm, want = ceil_div(n, threads);
  return static_cast<unsigned>(want < cap ? want : cap);
}

}  // namespace sat::cuda
