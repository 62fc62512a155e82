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
  // One NCCL communicator over the ranks of `comm`, bootstrapped through it (rank 0's unique id),
  // and a stream of its own beside `compute`, the stream the gradients are made on. NCCL runs
  // non-blocking: every wait polls its error state against comm's timeout, and a wait that passes
  // it aborts the NCCL communicator and throws sat::Error naming the operation.
  NcclReducer(Communicator& comm, cudaStream_t compute);
  // Aborts the communicator where an operation is still in flight (a peer failed mid-step), which
  // ends NCCL's kernels; otherwise destroys it.
  ~NcclReducer();
  NcclReducer(const NcclReducer&) = delete;
  NcclReducer& operator=(const NcclReducer&) = delete;

  // A weighted sum in parts: begin_sum fixes the weight; each sum_async makes its buffers (one
  // NCCL group, the same buffers in the same order on every rank) the sum over the ranks of
  // weight_r * buffer_r (NCCL's pre-multiplied sum, FP32) on the reducer's stream once the work
  // enqueued on the compute stream so far is done, and returns without waiting for it; end_sum
  // waits for every part. `what` names the sum in errors.
  void begin_sum(float weight, const std::string& what);
  void sum_async(const std::vector<Buffer>& buffers);
  void end_sum();
  // All of it at once: begin_sum, one sum_async of every buffer, end_sum.
  void weighted_sum(const std::vector<Buffer>& buffers, float weight, const std::string& what);
  // Rank 0's buffers on every rank, after the compute stream's work so far; returns once done.
  void broadcast_from_rank0(const std::vector<Buffer>& buffers, const std::string& what);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sat::cuda
