#pragma once
// The host-callable interface of the transformer layer kernels (transformer_kernels.cu): what the
// GPU-resident step runs for ViT's layers between the products. Plain C++, device pointers,
// asynchronous on `stream`; layouts as layer_ops.hpp (a per-sample [T, D] activation is the matrix
// [B*T][D], row b*T + t).
//
// Each kernel computes what its CPU layer (host/src/layers/) computes: the same operations in the
// same order and precision (double where the CPU uses double), written with explicitly rounded
// intrinsics so that the compiler contracts nothing into an FMA the CPU does not have. Differences
// that remain: erf/exp/expf of CUDA's math library (within 2 ulp, against glibc's), and the
// attention's FP32 products, summed in a different order than the CPU's sgemm (docs/cuda.md).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace sat::cuda {

// LayerNorm over the last dimension d of x BF16 [rows][d]: per row, mean and biased variance in
// double; xhat (FP32 [rows][d]) and rstd (FP32 [rows]) kept for backward; y = round(gamma*xhat+beta).
void layernorm_forward(const uint16_t* x, int64_t rows, int64_t d, double eps, const float* gamma, const float* beta,
                       float* xhat, float* rstd, uint16_t* y, cudaStream_t s);
// Backward: dx = round(rstd * (g - mean(g) - xhat * mean(g * xhat))) with g = dy * gamma (double);
// gamma_grad += sum dy * xhat, beta_grad += sum dy (double, combined in a fixed order).
// partial: scratch of at least layernorm_partials(rows, d) doubles.
int64_t layernorm_partials(int64_t rows, int64_t d);
void layernorm_backward(const uint16_t* dy, const float* xhat, const float* rstd, int64_t rows, int64_t d,
                        const float* gamma, float* gamma_grad, float* beta_grad, double* partial, uint16_t* dx,
                        cudaStream_t s);
// Empty when d fits the LayerNorm kernels (a row tile in shared memory); otherwise why not.
std::string layernorm_unsupported(int64_t d);

// GELU, exact erf form or its tanh approximation, in double like the CPU layer; n elements.
void gelu_forward(const uint16_t* x, int64_t n, bool tanh_form, uint16_t* y, cudaStream_t s);
void gelu_backward(const uint16_t* x, const uint16_t* dy, int64_t n, bool tanh_form, uint16_t* dx, cudaStream_t s);

// Token mean [nb*t][d] -> [nb][d] (sum over the tokens in double); backward spreads dy * (1/t).
void token_mean_forward(const uint16_t* x, int64_t nb, int64_t t, int64_t d, uint16_t* y, cudaStream_t s);
void token_mean_backward(const uint16_t* dy, int64_t nb, int64_t t, int64_t d, uint16_t* dx, cudaStream_t s);

// Patch embedding's epilogue: y BF16 [nb*t][d] = round(acc[r][j] + (bias[j] + pos[r % t][j]))
// (acc FP32, leading dimension ld_acc); backward: pos_grad[t][j] += sum over images of dy (double).
void bias_pos_round(const float* acc, int64_t ld_acc, const float* bias, const float* pos, int64_t nb, int64_t t,
                    int64_t d, uint16_t* y, cudaStream_t s);
void pos_grad(const uint16_t* dy, int64_t nb, int64_t t, int64_t d, float* grad, cudaStream_t s);

// FP32 rows in place: v[r][j] += bias[j] (bias may be null: nothing to do).
void add_bias_f32(float* v, int64_t rows, int64_t c, const float* bias, cudaStream_t s);
// out BF16 = round(a + (b + c)), FP32 inputs: the input gradient of an attention (dQ + dK + dV
// terms, the CPU's order).
void add3_round(const float* a, const float* b, const float* c, int64_t n, uint16_t* out, cudaStream_t s);

// Multi-head attention core over q, k, v FP32 [nb*t][d] (heads of dh = d/heads columns each):
// per image and head, A = softmax(scale * Q K^T) (FP32 [nb][heads][t][t], kept for backward) and
// O = A V, written as BF16 [nb*t][ld_o] (the output projection's input; columns >= d untouched).
struct AttnShape {
  int64_t nb, t, d, heads;
  float scale;
};
void attention_forward(const float* q, const float* k, const float* v, const AttnShape& a, float* probs,
                       uint16_t* o, int64_t ld_o, cudaStream_t s);
// Backward from dO FP32 [nb*t][ld_do]: dV = A^T dO, dS = scale * A * (dA - rowsum(A * dA)) with
// dA = dO V^T, dQ = dS K, dK = dS^T Q; dq, dk, dv BF16 [nb*t][d].
void attention_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout,
                        int64_t ld_do, const AttnShape& a, uint16_t* dq, uint16_t* dk, uint16_t* dv,
                        cudaStream_t s);
// Empty when (t, dh) fit the attention kernels (one image and head in shared memory).
std::string attention_unsupported(int64_t t, int64_t dh);

}  // namespace sat::cuda
