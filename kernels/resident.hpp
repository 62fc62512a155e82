#pragma once
// The GPU-resident step of the `cuda` backend (docs/cuda.md, "GPU-resident training"): a model's
// forward, loss and backward as one sequence of device work over buffers allocated once per model
// and batch. Activations and gradients never leave the GPU; the backend keeps the parameters, their
// gradients, momenta and weight forms there and runs the update. Plain C++ (no CUDA compiler).
#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ops.hpp"
#include "sat/model.hpp"

namespace sat::cuda {

// What the plan needs of the backend's device mirror of one weight.
struct WeightDev {
  const DevNM* fwd = nullptr;       // W_F (when FF is sparse under the method)
  const DevNM* bwd = nullptr;       // W_B (when BP is sparse)
  const uint16_t* dense = nullptr;  // BF16 dense operand (dense FF or BP)
  float* grad = nullptr;            // FP32 gradient, accumulated by WU
};

struct ResidentLinks {
  std::function<float*(const Param*)> value;        // device FP32 values of any parameter
  std::function<float*(const Param*)> grad;         // device FP32 gradient of a trainable one
  std::function<WeightDev(const SparseWeight*)> weight;
  // When set (data-parallel training with the all-reduce overlapped, gradient_buckets.hpp): told of
  // each trainable parameter once BP has enqueued the last work on its gradient.
  std::function<void(const Param*)> grad_ready;
};

// The trainable parameters in the order the resident step's BP finishes their gradients (layers
// last to first; a residual's body, then its shortcut).
std::vector<const Param*> backward_param_order(Model& model);

// Empty when every layer of `model` has a resident implementation; otherwise which one has not.
std::string resident_unsupported(Model& model);

struct Ctx;   // resident.cpp

class ResidentPlan {
 public:
  ResidentPlan(Model& model, int64_t batch, Method method, const ResidentLinks& links, Blas& blas,
               cudaStream_t stream);
  ~ResidentPlan();
  ResidentPlan(const ResidentPlan&) = delete;
  ResidentPlan& operator=(const ResidentPlan&) = delete;

  int64_t batch() const { return batch_; }
  // Device buffers the step reads: the batch in the host tensor's layout (BF16 bits) and the labels.
  uint16_t* input() const { return input_; }
  int* labels() const { return labels_; }
  int64_t input_elems() const { return input_elems_; }
  // The step's result on the device: mean loss (double) and the correct count.
  const double* loss() const { return loss_; }
  const int* correct() const { return correct_; }

  // Enqueue on the plan's stream: FF (training: caches for backward and BatchNorm's batch
  // statistics), the loss (with dL/dlogits when training), BP and WU of every layer.
  void forward(bool training);
  void loss_and_grad(bool training);
  void backward();

  struct Op;
  struct Seq;

 private:
  int64_t batch_;
  cudaStream_t stream_;
  std::vector<void*> allocations_;
  uint16_t* input_ = nullptr;
  int64_t input_elems_ = 0;
  int* labels_ = nullptr;
  double* loss_ = nullptr;
  int* correct_ = nullptr;
  std::unique_ptr<Ctx> ctx_;
  std::unique_ptr<Seq> top_;
  // loss scratch
  int64_t classes_ = 0;
  float* logits32_ = nullptr;
  float* dlogits32_ = nullptr;
  uint16_t* dlogits_ = nullptr;
  double* row_loss_ = nullptr;
  int* row_correct_ = nullptr;
  const uint16_t* first_in_ = nullptr;   // the batch channels-last
  bool permute_input_ = false;
  int64_t in_c_ = 0, in_hw_ = 0;
  uint16_t* input_nhwc_ = nullptr;
};

}  // namespace sat::cuda
