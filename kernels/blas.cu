// The dense products through cuBLAS: BF16 operands, FP32 accumulation (CUBLAS_COMPUTE_32F), FP32 or
// BF16 results. Row-major arrays are handed to column-major cuBLAS as their transposes.
#include <cublas_v2.h>

#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda {

namespace {

const char* blas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED (no usable GPU or driver?)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(std::string("cuBLAS ") + what + " failed: " + blas_status_name(s));
}

cublasHandle_t h(void* p) { return static_cast<cublasHandle_t>(p); }

// C (m x n, col-major, ldc) = alpha * op(A) op(B) + beta * C
void gemm(void* handle, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const uint16_t* a, int64_t lda,
          const uint16_t* b, int64_t ldb, float beta, void* c, bool c_bf16, int64_t ldc, const char* what) {
  const float alpha = 1.0f;
  check(cublasGemmEx(h(handle), ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                     static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &alpha, a, CUDA_R_16BF,
                     static_cast<int>(lda), b, CUDA_R_16BF, static_cast<int>(ldb), &beta, c,
                     c_bf16 ? CUDA_R_16BF : CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT),
        what);
}

}  // namespace

// A workspace of our own, so that cuBLAS allocates nothing while a step is captured as a CUDA graph
// (its documented requirement for stream capture); 32 MiB is what it recommends for Hopper.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

Blas::Blas() {
  cublasHandle_t handle = nullptr;
  check(cublasCreate(&handle), "cublasCreate");
  handle_ = handle;
  if (cudaMalloc(&workspace_, kWorkspaceBytes) != cudaSuccess) {
    cublasDestroy(handle);
    throw Error("cuBLAS: cannot allocate its 32 MiB workspace");
  }
  check(cublasSetWorkspace(handle, workspace_, kWorkspaceBytes), "cublasSetWorkspace");
}

Blas::~Blas() {
  if (handle_) cublasDestroy(h(handle_));
  cudaFree(workspace_);
}

void Blas::set_stream(cudaStream_t s) { check(cublasSetStream(h(handle_), s), "cublasSetStream"); }

// Y[cols][ldy] row-major = col-major Y^T (cout x cols); W[cout][k] row-major = col-major k x cout.
void Blas::ff(const uint16_t* w, int64_t cout, int64_t k, const uint16_t* x, int64_t ldx, int64_t cols, void* y,
              bool y_bf16, int64_t ldy) {
  gemm(handle_, true, false, cout, cols, k, w, k, x, ldx, 0.0f, y, y_bf16, ldy, "gemm (dense FF)");
}

// dX^T (k x cols) = W^T... in col-major terms: (k x cout, lda k) * dY^T (cout x cols, ld lddy).
void Blas::bp(const uint16_t* w, int64_t cout, int64_t k, const uint16_t* dy, int64_t lddy, int64_t cols, void* dx,
              bool dx_bf16, int64_t lddx) {
  gemm(handle_, false, false, k, cols, cout, w, k, dy, lddy, 0.0f, dx, dx_bf16, lddx, "gemm (dense BP)");
}

// dW[cout][k] row-major = col-major (k x cout) = X^T-view (k x cols) * dY-view^T (cols x cout).
void Blas::wu(const uint16_t* dy, int64_t lddy, const uint16_t* x, int64_t ldx, int64_t cols, int64_t cout,
              int64_t k, void* dw, bool dw_bf16, float beta) {
  gemm(handle_, false, true, k, cout, cols, x, ldx, dy, lddy, beta, dw, dw_bf16, k, "gemm (WU)");
}

}  // namespace sat::cuda
