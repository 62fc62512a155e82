// Optional column of the CUDA benchmark: NVIDIA cuSPARSELt's 2:4 sparse product (the vendor library
// for the sparse tensor cores) against cuBLAS dense BF16, on the FF products of the layer shapes of
// cuda_bench. Built only where cusparseLt.h is found (bench/CMakeLists.txt); prints a table, never
// passes or fails. Y^T[Cout][P] = W[Cout][K] (2:4 along K, pruned by cuSPARSELt) * X^T.
#include <cuda_runtime.h>
#include <cusparseLt.h>

#include <cstdio>
#include <string>
#include <vector>

#include "ops.hpp"

namespace {

#define CK(x)                                                                                     \
  do {                                                                                            \
    cudaError_t e_ = (x);                                                                         \
    if (e_ != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); return -1.0; } \
  } while (0)
#define LT(x)                                                                                     \
  do {                                                                                            \
    cusparseStatus_t s_ = (x);                                                                    \
    if (s_ != CUSPARSE_STATUS_SUCCESS) { std::fprintf(stderr, "%s failed: %d\n", #x, int(s_)); return -1.0; } \
  } while (0)

// Mean ms of the cuSPARSELt product on [cout][k] x [k][p] (p given as X[p][k]); -1 on failure.
double lt_ms(cusparseLtHandle_t& h, int64_t cout, int64_t k, int64_t p) {
  void *a = nullptr, *ac = nullptr, *acb = nullptr, *x = nullptr, *y = nullptr, *ws = nullptr;
  CK(cudaMalloc(&a, cout * k * 2));
  CK(cudaMalloc(&x, p * k * 2));
  CK(cudaMalloc(&y, cout * p * 2));
  CK(cudaMemset(a, 0x3c, cout * k * 2));
  CK(cudaMemset(x, 0x3c, p * k * 2));
  cusparseLtMatDescriptor_t ma, mb, mc;
  LT(cusparseLtStructuredDescriptorInit(&h, &ma, cout, k, k, 16, CUDA_R_16BF, CUSPARSE_ORDER_ROW,
                                        CUSPARSELT_SPARSITY_50_PERCENT));
  LT(cusparseLtDenseDescriptorInit(&h, &mb, p, k, k, 16, CUDA_R_16BF, CUSPARSE_ORDER_ROW));
  LT(cusparseLtDenseDescriptorInit(&h, &mc, cout, p, p, 16, CUDA_R_16BF, CUSPARSE_ORDER_ROW));
  cusparseLtMatmulDescriptor_t mm;
  LT(cusparseLtMatmulDescriptorInit(&h, &mm, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_TRANSPOSE, &ma, &mb,
                                    &mc, &mc, CUSPARSE_COMPUTE_32F));
  cusparseLtMatmulAlgSelection_t alg;
  LT(cusparseLtMatmulAlgSelectionInit(&h, &alg, &mm, CUSPARSELT_MATMUL_ALG_DEFAULT));
  cusparseLtMatmulPlan_t plan;
  LT(cusparseLtMatmulPlanInit(&h, &plan, &mm, &alg));
  LT(cusparseLtSpMMAPrune(&h, &mm, a, a, CUSPARSELT_PRUNE_SPMMA_TILE, nullptr));
  size_t csize = 0, cbsize = 0, wsize = 0;
  LT(cusparseLtSpMMACompressedSize(&h, &plan, &csize, &cbsize));
  CK(cudaMalloc(&ac, csize));
  CK(cudaMalloc(&acb, cbsize ? cbsize : 1));
  LT(cusparseLtSpMMACompress(&h, &plan, a, ac, acb, nullptr));
  LT(cusparseLtMatmulGetWorkspace(&h, &plan, &wsize));
  CK(cudaMalloc(&ws, wsize ? wsize : 1));
  const float alpha = 1.0f, beta = 0.0f;
  auto run = [&] { return cusparseLtMatmul(&h, &plan, &alpha, ac, x, &beta, y, y, ws, nullptr, 0); };
  for (int i = 0; i < 3; ++i) LT(run());
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  const int reps = 20;
  cudaEventRecord(e0);
  for (int i = 0; i < reps; ++i) LT(run());
  cudaEventRecord(e1);
  CK(cudaEventSynchronize(e1));
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cusparseLtMatmulPlanDestroy(&plan);
  cusparseLtMatDescriptorDestroy(&ma);
  cusparseLtMatDescriptorDestroy(&mb);
  cusparseLtMatDescriptorDestroy(&mc);
  for (void* q : {a, ac, acb, x, y, ws}) cudaFree(q);
  return ms / reps;
}

}  // namespace

int main() {
  cusparseLtHandle_t h;
  if (cusparseLtInit(&h) != CUSPARSE_STATUS_SUCCESS) {
    std::fprintf(stderr, "cuda_bench_cusparselt: cusparseLtInit failed (no GPU or unsupported one)\n");
    return 1;
  }
  sat::cuda::Blas blas;
  struct S { const char* name; int64_t cout, k, p; };
  const std::vector<S> shapes = {{"ResNet-18 layer3, B 512", 256, 2304, 512 * 64},
                                 {"ResNet-18 layer4, B 512", 512, 4608, 512 * 16},
                                 {"large: 512-512 3x3 @7x7, B 256", 512, 4608, 256 * 49},
                                 {"large: 4096-4096, 8192 tokens", 4096, 4096, 8192},
                                 {"large: 4096-16384, 8192 tokens", 16384, 4096, 8192},
                                 {"large: 16384-4096, 8192 tokens", 4096, 16384, 8192}};
  std::printf("## cuSPARSELt 2:4 FF product vs cuBLAS dense (BF16, FP32 accumulate)\n\n");
  std::printf("| layer | Cout x K x P | cuBLAS dense ms | cuSPARSELt 2:4 ms | dense / cuSPARSELt |\n|---|---|---|---|---|\n");
  for (const S& s : shapes) {
    void *w = nullptr, *x = nullptr, *y = nullptr;
    cudaMalloc(&w, s.cout * s.k * 2);
    cudaMalloc(&x, s.p * s.k * 2);
    cudaMalloc(&y, s.cout * s.p * 2);
    cudaMemset(w, 0x3c, s.cout * s.k * 2);
    cudaMemset(x, 0x3c, s.p * s.k * 2);
    auto dense = [&] { blas.ff(static_cast<uint16_t*>(w), s.cout, s.k, static_cast<uint16_t*>(x), s.k, s.p, y, true, s.cout); };
    for (int i = 0; i < 3; ++i) dense();
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0);
    for (int i = 0; i < 20; ++i) dense();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float dms = 0;
    cudaEventElapsedTime(&dms, e0, e1);
    dms /= 20;
    cudaFree(w);
    cudaFree(x);
    cudaFree(y);
    const double lms = lt_ms(h, s.cout, s.k, s.p);
    std::printf("| %s | %lld x %lld x %lld | %.3f | %s | %s |\n", s.name, (long long)s.cout, (long long)s.k,
                (long long)s.p, dms, lms > 0 ? std::to_string(lms).substr(0, 6).c_str() : "failed",
                lms > 0 ? std::to_string(dms / lms).substr(0, 4).c_str() : "-");
    std::fflush(stdout);
  }
  cusparseLtDestroy(&h);
  return 0;
}
