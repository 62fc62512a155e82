#pragma once
// Launchers of the sparse product kernels, behind sat::cuda::spmm (spmm_dispatch.cu).
#include "ops.hpp"

namespace sat::cuda {

// stats (BF16 output only, may be null): spmm's line_stats; returns their column blocks (0: none).
int64_t launch_spmm_wgmma(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                          bool out_bf16, int64_t ld_out, double* stats, cudaStream_t stream);
void launch_spmm_sp24(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                      bool out_bf16, int64_t ld_out, cudaStream_t stream);
void launch_spmm_general(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                         bool out_bf16, int64_t ld_out, cudaStream_t stream);

}  // namespace sat::cuda
