// Bucketed all-reduce overlapped with BP (gradient_buckets.hpp).
#include "gradient_buckets.hpp"

#include "sat/error.hpp"

namespace sat::cuda {

GradientBuckets::GradientBuckets(const std::vector<Gradient>& grads, const BucketSettings& settings, NcclReducer& nccl)
    : nccl_(nccl) {
  std::vector<int64_t> bytes;
  for (const Gradient& g : grads) bytes.push_back(g.n * static_cast<int64_t>(sizeof(float)));
  const std::vector<size_t> starts = plan_buckets(bytes, settings);
  for (size_t b = 0; b + 1 < starts.size(); ++b) {
    buckets_.emplace_back();
    for (size_t i = starts[b]; i < starts[b + 1]; ++i) {
      buckets_.back().push_back({grads[i].data, grads[i].n});
      // listed twice, a gradient would keep its bucket waiting for a second report
      if (!bucket_of_.emplace(grads[i].param, b).second) {
        throw Error("NCCL buckets: " + grads[i].param->name + " listed twice (internal error)");
      }
    }
  }
}

void GradientBuckets::begin(float weight, const std::string& what) {
  if (open_) throw Error("NCCL: a gradient sum began before the last one finished (internal error)");
  nccl_.begin_sum(weight, what);
  missing_.clear();
  for (const auto& bucket : buckets_) missing_.push_back(bucket.size());
  reported_.clear();
  next_ = 0;
  started_in_bp_ = 0;
  open_ = true;
}

void GradientBuckets::ready(const Param* param) {
  if (!open_) return;
  const auto it = bucket_of_.find(param);
  if (it == bucket_of_.end() || !reported_.insert(param).second) return;
  --missing_[it->second];
  const size_t before = next_;
  start_ready_buckets();
  started_in_bp_ += next_ - before;
}

void GradientBuckets::start_ready_buckets() {
  while (next_ < buckets_.size() && missing_[next_] == 0) nccl_.sum_async(buckets_[next_++]);
}

void GradientBuckets::finish() {
  if (!open_) throw Error("NCCL: a gradient sum finished without beginning (internal error)");
  open_ = false;
  for (size_t b = next_; b < buckets_.size(); ++b) missing_[b] = 0;
  start_ready_buckets();
  nccl_.end_sum();
}

}  // namespace sat::cuda
