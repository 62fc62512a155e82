#pragma once
// The gradients of a data-parallel step summed through NCCL bucket by bucket while the backward
// pass runs, as PyTorch's DistributedDataParallel does (docs/distributed.md, "cuda"). The resident
// step reports each parameter whose gradient BP has finished enqueueing (ResidentLinks::grad_ready);
// a bucket whose gradients are all reported is summed on NCCL's stream after the work enqueued so
// far, while BP goes on with the layers before. Buckets start in their order on every rank, which
// NCCL requires: every rank issues the same collectives in the same order.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "nccl_reducer.hpp"
#include "sat/backend.hpp"
#include "sat/distributed.hpp"
#include "sat/model.hpp"

namespace sat::cuda {

struct BucketStats {
  size_t buckets = 0;
  size_t started_in_bp = 0;   // of the last step: started by grad_ready, not by finish
  size_t gradients = 0;
  size_t reported = 0;        // of the last step: gradients BP reported (grad_ready)
};

class GradientBuckets {
 public:
  struct Gradient {
    const Param* param;
    float* data;
    int64_t n;
  };
  // `grads` in the order BP is expected to finish them (the model's parameters reversed); a
  // different order only delays a bucket until its last gradient is reported.
  GradientBuckets(const std::vector<Gradient>& grads, const BucketSettings& settings, NcclReducer& nccl);

  size_t count() const { return buckets_.size(); }
  // A step's sum, each rank's gradients weighted by `weight`.
  void begin(float weight, const std::string& what);
  // BP has enqueued the last work on `param`'s gradient (a parameter this reducer does not hold,
  // or one reported twice, is ignored).
  void ready(const Param* param);
  // Starts every bucket not yet started (all of them on a rank that ran no BP: an empty shard)
  // and waits for the sum.
  void finish();
  BucketStats stats() const { return {buckets_.size(), started_in_bp_, bucket_of_.size(), reported_.size()}; }

 private:
  void start_ready_buckets();

  NcclReducer& nccl_;
  std::vector<std::vector<NcclReducer::Buffer>> buckets_;
  std::unordered_map<const Param*, size_t> bucket_of_;
  std::vector<size_t> missing_;    // of this step: gradients not yet reported, per bucket
  std::unordered_set<const Param*> reported_;
  size_t next_ = 0;                // the next bucket to start
  size_t started_in_bp_ = 0;
  bool open_ = false;
};

// The bucket counts of the last data-parallel step of `cuda_backend` (an open_backend("cuda")):
// {0, 0} where the all-reduce was not overlapped.
BucketStats last_bucket_stats(const Backend& cuda_backend);

}  // namespace sat::cuda
