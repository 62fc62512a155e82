#pragma once
// BatchNorm2d through cuDNN: the alternative to layer_kernels.cu's hand-written BatchNorm, built
// where CMake finds cuDNN (SAT_CUDNN_BUILT) and chosen at run time by SAT_CUDA_BN=cudnn
// (docs/cuda.md, "cuDNN"). Same layout as layer_ops.hpp: BF16 channels-last [rows][c], FP32
// parameters and running statistics. cuDNN orders and rounds its sums its own way, so its results
// differ from the CPU's by more than the hand-written kernels' (tests/cuda/cuda_layers_test.cpp).
// Plain C++, device pointers, asynchronous on `stream`.
#include <cuda_runtime.h>

#include <cstdint>

namespace sat::cuda {

// Whether this build has cuDNN.
bool cudnn_built();
// Which BatchNorm the resident step runs: SAT_CUDA_BN=own (the hand-written kernels, default) or
// cudnn (an error naming the reason in a build without cuDNN); anything else is refused.
bool bn_uses_cudnn();

// One BatchNorm layer's cuDNN descriptors over [rows][c] (spatial mode, statistics per channel
// over the rows). The saved batch mean and inverse deviation (FP32, c each) go from forward to
// backward. Throws sat::Error with cuDNN's status name on any failure, or when built without cuDNN.
class CudnnBatchNorm {
 public:
  CudnnBatchNorm(int64_t rows, int64_t c, double eps);
  ~CudnnBatchNorm();
  CudnnBatchNorm(const CudnnBatchNorm&) = delete;
  CudnnBatchNorm& operator=(const CudnnBatchNorm&) = delete;

  // y = gamma * xhat + beta with the batch statistics; running statistics moved by `momentum`
  // (running variance unbiased); save_mean / save_invstd kept for backward.
  void forward_train(const uint16_t* x, uint16_t* y, const float* gamma, const float* beta, double momentum,
                     float* running_mean, float* running_var, float* save_mean, float* save_invstd,
                     cudaStream_t s);
  // With the running statistics.
  void forward_eval(const uint16_t* x, uint16_t* y, const float* gamma, const float* beta, const float* running_mean,
                    const float* running_var, cudaStream_t s);
  // dx, and the parameter gradients added into gamma_grad / beta_grad.
  void backward(const uint16_t* x, const uint16_t* dy, uint16_t* dx, const float* gamma, float* gamma_grad,
                float* beta_grad, const float* save_mean, const float* save_invstd, cudaStream_t s);

 private:
  double eps_;
  void* x_desc_ = nullptr;
  void* p_desc_ = nullptr;
};

}  // namespace sat::cuda
