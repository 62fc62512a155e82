// BatchNorm2d through cuDNN (cudnn_bn.hpp). The legacy BatchNorm entry points (deprecated in
// cuDNN 9 in favour of the graph API, still shipped and what frameworks call for this layer) in
// spatial-persistent mode, the channels-last fast path: the [rows][c] activation is an NHWC tensor
// of rows images of 1 x 1 pixels, which gives the same per-channel statistics as [b][h][w][c].
#include "cudnn_bn.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include "sat/error.hpp"

#ifdef SAT_CUDNN_BUILT
#include <cudnn.h>
// The legacy BatchNorm functions carry CUDNN_DEPRECATED in cuDNN 9; they are what this file wraps.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

namespace sat::cuda {

bool cudnn_built() {
#ifdef SAT_CUDNN_BUILT
  return true;
#else
  return false;
#endif
}

bool bn_uses_cudnn() {
  static const bool v = [] {
    const char* e = std::getenv("SAT_CUDA_BN");
    if (!e || !*e || std::strcmp(e, "own") == 0) return false;
    if (std::strcmp(e, "cudnn") != 0) throw Error(std::string("SAT_CUDA_BN='") + e + "': expected 'own' or 'cudnn'");
    if (!cudnn_built()) {
      throw Error("SAT_CUDA_BN=cudnn: this build has no cuDNN (CMake did not find cudnn.h and libcudnn; see its "
                  "configure report)");
    }
    return true;
  }();
  return v;
}

#ifdef SAT_CUDNN_BUILT

namespace {

void check(cudnnStatus_t st, const char* what) {
  if (st != CUDNN_STATUS_SUCCESS) throw Error(std::string("cuDNN ") + what + " failed: " + cudnnGetErrorString(st));
}

// One handle for the process, pointed at each call's stream (cudnnCreate costs milliseconds and
// memory; the resident step issues its work from one thread).
cudnnHandle_t handle_on(cudaStream_t s) {
  static cudnnHandle_t h = [] {
    cudnnHandle_t x = nullptr;
    check(cudnnCreate(&x), "cudnnCreate");
    return x;
  }();
  check(cudnnSetStream(h, s), "cudnnSetStream");
  return h;
}

cudnnTensorDescriptor_t td(void* p) { return static_cast<cudnnTensorDescriptor_t>(p); }

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;

}  // namespace

CudnnBatchNorm::CudnnBatchNorm(int64_t rows, int64_t c, double eps) : eps_(eps) {
  if (rows < 2 || c < 1 || rows > INT32_MAX || c > INT32_MAX) {
    throw Error("cuDNN BatchNorm: " + std::to_string(rows) + " rows x " + std::to_string(c) + " channels is out of range");
  }
  if (eps < CUDNN_BN_MIN_EPSILON) {
    throw Error("cuDNN BatchNorm: eps " + std::to_string(eps) + " is below cuDNN's minimum " +
                std::to_string(CUDNN_BN_MIN_EPSILON));
  }
  cudnnTensorDescriptor_t x = nullptr, p = nullptr;
  check(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
  x_desc_ = x;
  check(cudnnCreateTensorDescriptor(&p), "cudnnCreateTensorDescriptor");
  p_desc_ = p;
  check(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, static_cast<int>(rows),
                                   static_cast<int>(c), 1, 1),
        "cudnnSetTensor4dDescriptor (BF16 NHWC)");
  check(cudnnDeriveBNTensorDescriptor(p, x, kMode), "cudnnDeriveBNTensorDescriptor");
}

CudnnBatchNorm::~CudnnBatchNorm() {
  if (x_desc_) cudnnDestroyTensorDescriptor(td(x_desc_));
  if (p_desc_) cudnnDestroyTensorDescriptor(td(p_desc_));
}

void CudnnBatchNorm::forward_train(const uint16_t* x, uint16_t* y, const float* gamma, const float* beta,
                                   double momentum, float* running_mean, float* running_var, float* save_mean,
                                   float* save_invstd, cudaStream_t s) {
  const float one = 1.0f, zero = 0.0f;
  check(cudnnBatchNormalizationForwardTraining(handle_on(s), kMode, &one, &zero, td(x_desc_), x, td(x_desc_), y,
                                               td(p_desc_), gamma, beta, momentum, running_mean, running_var, eps_,
                                               save_mean, save_invstd),
        "cudnnBatchNormalizationForwardTraining");
}

void CudnnBatchNorm::forward_eval(const uint16_t* x, uint16_t* y, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, cudaStream_t s) {
  const float one = 1.0f, zero = 0.0f;
  // Inference takes the plain spatial mode (persistent is a training-time variant).
  check(cudnnBatchNormalizationForwardInference(handle_on(s), CUDNN_BATCHNORM_SPATIAL, &one, &zero, td(x_desc_), x,
                                                td(x_desc_), y, td(p_desc_), gamma, beta, running_mean, running_var,
                                                eps_),
        "cudnnBatchNormalizationForwardInference");
}

void CudnnBatchNorm::backward(const uint16_t* x, const uint16_t* dy, uint16_t* dx, const float* gamma,
                              float* gamma_grad, float* beta_grad, const float* save_mean, const float* save_invstd,
                              cudaStream_t s) {
  const float one = 1.0f, zero = 0.0f;
  // beta for the parameter gradients is 1: they are added to what the step has gathered.
  check(cudnnBatchNormalizationBackward(handle_on(s), kMode, &one, &zero, &one, &one, td(x_desc_), x, td(x_desc_), dy,
                                        td(x_desc_), dx, td(p_desc_), gamma, gamma_grad, beta_grad, eps_, save_mean,
                                        save_invstd),
        "cudnnBatchNormalizationBackward");
}

#else  // no cuDNN in this build

CudnnBatchNorm::CudnnBatchNorm(int64_t, int64_t, double eps) : eps_(eps) {
  throw Error("cuDNN BatchNorm: this build has no cuDNN");
}
CudnnBatchNorm::~CudnnBatchNorm() = default;
void CudnnBatchNorm::forward_train(const uint16_t*, uint16_t*, const float*, const float*, double, float*, float*,
                                   float*, float*, cudaStream_t) {}
void CudnnBatchNorm::forward_eval(const uint16_t*, uint16_t*, const float*, const float*, const float*, const float*,
                                  cudaStream_t) {}
void CudnnBatchNorm::backward(const uint16_t*, const uint16_t*, uint16_t*, const float*, float*, float*, const float*,
                              const float*, cudaStream_t) {}

#endif

}  // namespace sat::cuda
