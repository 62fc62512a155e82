#pragma once
// The gradients of a data-parallel run summed over the ranks on the GPUs' own buffers, through
// NCCL (docs/distributed.md). NCCL is optional at configure time (SAT_NCCL_BUILT); without it the
// cuda backend sums through the host over MPI, and says so.
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sat {
class Communicator;   // sat/distributed.hpp
}

namespace sat::cuda {

// "NCCL 2.28.9" in a build with NCCL; else why it is missing.
std::string nccl_description();
bool nccl_built();

class NcclReducer {
 public:
  struct Buffer {
    float* data;
    int64_t n;
  };
  // One NCCL communicator over the ranks of `comm`, bootstrapped through it (rank 0's unique id).
  // NCCL runs non-blocking: every wait polls its error state against comm's timeout, and a wait
  // that passes it aborts the NCCL communicator and throws sat::Error naming `what`.
  NcclReducer(Communicator& comm, cudaStream_t stream);
  ~NcclReducer();
  NcclReducer(const NcclReducer&) = delete;
  NcclReducer& operator=(const NcclReducer&) = delete;

  // Every buffer, in the order given (the same on every rank), becomes the sum over the ranks of
  // weight_r * buffer_r (NCCL's pre-multiplied sum, in FP32), on `stream`; returns once done.
  void weighted_sum(const std::vector<Buffer>& buffers, float weight, const std::string& what);
  // Rank 0's buffers on every rank.
  void broadcast_from_rank0(const std::vector<Buffer>& buffers, const std::string& what);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sat::cuda
