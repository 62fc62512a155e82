// The transformer layer kernels of the GPU-resident step (transformer_ops.hpp): LayerNorm, GELU,
// token mean, the patch embedding's epilogue and the attention core. Written by hand for the same
// reason as layer_kernels.cu: each must round and order like its CPU layer, step for step, and
// they are small. The per-row work (LayerNorm, softmax) runs one row per thread over a tile staged
// in shared memory, so that each row's sums are sequential in the CPU's order; the tile's rows are
// padded by one word so that threads reading "their" rows hit distinct banks.
#include <cmath>
#include <cstdint>
#include <string>

#include "common.cuh"
#include "transformer_ops.hpp"

namespace sat::cuda {

namespace {

using sat::bf16_bits_to_f32;
using sat::f32_to_bf16_bits;

constexpr int kSmemBytes = 48 * 1024;   // the default dynamic shared-memory limit of a block
constexpr int kThreads = 128;

unsigned blocks_for(int64_t n, const char* what) { return grid_blocks32(n, kThreads, what); }

// ---- LayerNorm ---------------------------------------------------------------------------------

// Rows per block such that `tiles` row tiles of d + 1 floats fit the shared-memory budget.
int ln_rows(int64_t d, int tiles) {
  const int64_t r = kSmemBytes / (static_cast<int64_t>(tiles) * (d + 1) * 4);
  return static_cast<int>(r < 32 ? r : 32);
}

__device__ __forceinline__ void load_tile(const uint16_t* src, int64_t row0, int nrows, int d, float* tile) {
  for (int i = threadIdx.x; i < nrows * d; i += blockDim.x) {
    const int r = i / d, c = i - r * d;
    tile[r * (d + 1) + c] = bf16_bits_to_f32(src[(row0 + r) * d + c]);
  }
}

__global__ void ln_forward_kernel(const uint16_t* x, int64_t rows, int d, double eps, const float* gamma,
                                  const float* beta, float* xhat, float* rstd, uint16_t* y, int rpb) {
  extern __shared__ float ln_tile[];
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * rpb;
  const int nrows = static_cast<int>(row0 + rpb <= rows ? rpb : rows - row0);
  load_tile(x, row0, nrows, d, ln_tile);
  __syncthreads();
  if (threadIdx.x < nrows) {
    float* row = ln_tile + threadIdx.x * (d + 1);
    const double dd = static_cast<double>(d);
    double sum = 0;
    for (int i = 0; i < d; ++i) sum = __dadd_rn(sum, static_cast<double>(row[i]));
    const double mean = __ddiv_rn(sum, dd);
    double sq = 0;
    for (int i = 0; i < d; ++i) {
      const double t = __dsub_rn(static_cast<double>(row[i]), mean);
      sq = __dadd_rn(sq, __dmul_rn(t, t));
    }
    const double rs = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(__ddiv_rn(sq, dd), eps)));
    rstd[row0 + threadIdx.x] = __double2float_rn(rs);
    for (int i = 0; i < d; ++i) row[i] = __double2float_rn(__dmul_rn(__dsub_rn(static_cast<double>(row[i]), mean), rs));
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nrows * d; i += blockDim.x) {
    const int r = i / d, c = i - r * d;
    const float h = ln_tile[r * (d + 1) + c];
    const int64_t at = (row0 + r) * d + c;
    xhat[at] = h;
    y[at] = f32_to_bf16_bits(__fadd_rn(__fmul_rn(gamma[c], h), beta[c]));
  }
}

// Per block: the column sums of its rows (dgamma and dbeta partials), then each row's dx.
__global__ void ln_backward_kernel(const uint16_t* dy, const float* xhat, const float* rstd, int64_t rows, int d,
                                   const float* gamma, double* partial, uint16_t* dx, int rpb) {
  extern __shared__ float ln_tile[];
  float* g = ln_tile;
  float* h = ln_tile + rpb * (d + 1);
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * rpb;
  const int nrows = static_cast<int>(row0 + rpb <= rows ? rpb : rows - row0);
  load_tile(dy, row0, nrows, d, g);
  for (int i = threadIdx.x; i < nrows * d; i += blockDim.x) {
    const int r = i / d, c = i - r * d;
    h[r * (d + 1) + c] = xhat[(row0 + r) * d + c];
  }
  __syncthreads();
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    double dg = 0, db = 0;
    for (int r = 0; r < nrows; ++r) {
      const double gv = static_cast<double>(g[r * (d + 1) + c]);
      dg = __dadd_rn(dg, __dmul_rn(gv, static_cast<double>(h[r * (d + 1) + c])));
      db = __dadd_rn(db, gv);
    }
    partial[(2 * static_cast<int64_t>(blockIdx.x)) * d + c] = dg;
    partial[(2 * static_cast<int64_t>(blockIdx.x) + 1) * d + c] = db;
  }
  __syncthreads();
  if (threadIdx.x < nrows) {
    float* gr = g + threadIdx.x * (d + 1);
    const float* hr = h + threadIdx.x * (d + 1);
    const double dd = static_cast<double>(d);
    double sum_g = 0, sum_gh = 0;
    for (int i = 0; i < d; ++i) {
      const double gi = __dmul_rn(static_cast<double>(gr[i]), static_cast<double>(gamma[i]));
      sum_g = __dadd_rn(sum_g, gi);
      sum_gh = __dadd_rn(sum_gh, __dmul_rn(gi, static_cast<double>(hr[i])));
    }
    const double mean_g = __ddiv_rn(sum_g, dd), mean_gh = __ddiv_rn(sum_gh, dd);
    const double rs = static_cast<double>(rstd[row0 + threadIdx.x]);
    for (int i = 0; i < d; ++i) {
      const double gi = __dmul_rn(static_cast<double>(gr[i]), static_cast<double>(gamma[i]));
      const double v = __dsub_rn(__dsub_rn(gi, mean_g), __dmul_rn(static_cast<double>(hr[i]), mean_gh));
      gr[i] = __double2float_rn(__dmul_rn(rs, v));
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nrows * d; i += blockDim.x) {
    const int r = i / d, c = i - r * d;
    dx[(row0 + r) * d + c] = f32_to_bf16_bits(g[r * (d + 1) + c]);
  }
}

// The partials of every block, summed in block order (the CPU sums over all rows in row order).
__global__ void ln_grad_finish(const double* partial, int64_t blocks, int d, float* gamma_grad, float* beta_grad) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  double dg = 0, db = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    dg = __dadd_rn(dg, partial[2 * b * d + c]);
    db = __dadd_rn(db, partial[(2 * b + 1) * d + c]);
  }
  gamma_grad[c] = __fadd_rn(gamma_grad[c], __double2float_rn(dg));
  beta_grad[c] = __fadd_rn(beta_grad[c], __double2float_rn(db));
}

// ---- GELU (host/src/layers/gelu.cpp's expressions, term by term) -----------------------------

constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kCubic = 0.044715;

__device__ __forceinline__ double tanh_arg(double x) {
  return __dmul_rn(kSqrt2OverPi, __dadd_rn(x, __dmul_rn(__dmul_rn(__dmul_rn(kCubic, x), x), x)));
}

__device__ __forceinline__ double gelu_value(double x, bool tanh_form) {
  const double half_x = __dmul_rn(0.5, x);
  if (tanh_form) return __dmul_rn(half_x, __dadd_rn(1.0, tanh(tanh_arg(x))));
  return __dmul_rn(half_x, __dadd_rn(1.0, erf(__ddiv_rn(x, kSqrt2))));
}

__device__ __forceinline__ double gelu_derivative(double x, bool tanh_form) {
  if (tanh_form) {
    const double t = tanh(tanh_arg(x));
    const double du = __dmul_rn(kSqrt2OverPi, __dadd_rn(1.0, __dmul_rn(__dmul_rn(3.0 * kCubic, x), x)));
    return __dadd_rn(__dmul_rn(0.5, __dadd_rn(1.0, t)),
                     __dmul_rn(__dmul_rn(__dmul_rn(0.5, x), __dsub_rn(1.0, __dmul_rn(t, t))), du));
  }
  return __dadd_rn(__dmul_rn(0.5, __dadd_rn(1.0, erf(__ddiv_rn(x, kSqrt2)))),
                   __dmul_rn(__dmul_rn(x, kInvSqrt2Pi), exp(__dmul_rn(__dmul_rn(-0.5, x), x))));
}

__global__ void gelu_kernel(const uint16_t* x, int64_t n, bool tanh_form, uint16_t* y) {
  SAT_GRID_LOOP(i, n) {
    const double v = static_cast<double>(bf16_bits_to_f32(x[i]));
    y[i] = f32_to_bf16_bits(__double2float_rn(gelu_value(v, tanh_form)));
  }
}

__global__ void gelu_back_kernel(const uint16_t* x, const uint16_t* dy, int64_t n, bool tanh_form, uint16_t* dx) {
  SAT_GRID_LOOP(i, n) {
    const double v = static_cast<double>(bf16_bits_to_f32(x[i]));
    const double g = static_cast<double>(bf16_bits_to_f32(dy[i]));
    dx[i] = f32_to_bf16_bits(__double2float_rn(__dmul_rn(g, gelu_derivative(v, tanh_form))));
  }
}

// ---- token mean, patch embedding, small epilogues ------------------------------------------------

__global__ void token_mean_kernel(const uint16_t* x, int64_t nb, int64_t t, int64_t d, uint16_t* y) {
  SAT_GRID_LOOP(i, nb * d) {
    const int D = static_cast<int>(d), T = static_cast<int>(t), b = i / D, c = i - b * D;
    double sum = 0;
    for (int k = 0; k < T; ++k) sum = __dadd_rn(sum, static_cast<double>(bf16_bits_to_f32(x[(b * T + k) * D + c])));
    y[i] = f32_to_bf16_bits(__double2float_rn(__ddiv_rn(sum, static_cast<double>(T))));
  }
}

__global__ void token_mean_back_kernel(const uint16_t* dy, int64_t nb, int64_t t, int64_t d, uint16_t* dx) {
  const float inv = __fdiv_rn(1.0f, static_cast<float>(t));
  SAT_GRID_LOOP(i, nb * t * d) {
    const int D = static_cast<int>(d), T = static_cast<int>(t), r = i / D, c = i - r * D, b = r / T;
    dx[i] = f32_to_bf16_bits(__fmul_rn(bf16_bits_to_f32(dy[b * D + c]), inv));
  }
}

__global__ void bias_pos_round_kernel(const float* acc, int64_t lda, const float* bias, const float* pos, int64_t nb,
                                      int64_t t, int64_t d, uint16_t* y) {
  SAT_GRID_LOOP(i, nb * t * d) {
    const int D = static_cast<int>(d), T = static_cast<int>(t), r = i / D, c = i - r * D, tok = r % T;
    y[i] = f32_to_bf16_bits(__fadd_rn(acc[static_cast<int64_t>(r) * lda + c], __fadd_rn(bias[c], pos[tok * D + c])));
  }
}

__global__ void pos_grad_kernel(const uint16_t* dy, int64_t nb, int64_t t, int64_t d, float* grad) {
  SAT_GRID_LOOP(i, t * d) {
    const int64_t td = t * d;
    double sum = 0;
    for (int64_t b = 0; b < nb; ++b) sum = __dadd_rn(sum, static_cast<double>(bf16_bits_to_f32(dy[b * td + i])));
    grad[i] = __fadd_rn(grad[i], __double2float_rn(sum));
  }
}

__global__ void add_bias_f32_kernel(float* v, int64_t rows, int64_t c, const float* bias) {
  SAT_GRID_LOOP(i, rows * c) v[i] = __fadd_rn(v[i], bias[i % static_cast<int>(c)]);
}

__global__ void add3_round_kernel(const float* a, const float* b, const float* c, int64_t n, uint16_t* out) {
  SAT_GRID_LOOP(i, n) out[i] = f32_to_bf16_bits(__fadd_rn(a[i], __fadd_rn(b[i], c[i])));
}

// ---- attention core: one block per (head, image), the image's head in shared memory ------------

struct AttnDims {
  int t, d, dh, heads;
  float scale;
};

__device__ __forceinline__ void load_head(const float* src, int64_t row0, const AttnDims& a, int h, float* dst,
                                          int ld) {
  for (int i = threadIdx.x; i < a.t * a.dh; i += blockDim.x) {
    const int r = i / a.dh, j = i - r * a.dh;
    dst[r * ld + j] = src[(row0 + r) * a.d + h * a.dh + j];
  }
}

// Shared memory: Q [t][dh], K [t][dh+1], V [t][dh], S [t][t+1].
size_t attn_forward_smem(int64_t t, int64_t dh) { return 4 * static_cast<size_t>(t * dh * 3 + t + t * (t + 1)); }

__global__ void attn_forward_kernel(const float* q, const float* k, const float* v, AttnDims a, float* probs,
                                    uint16_t* o, int64_t ld_o) {
  extern __shared__ float attn_smem[];
  const int t = a.t, dh = a.dh, h = blockIdx.x, b = blockIdx.y;
  float* Q = attn_smem;
  float* K = Q + t * dh;
  float* V = K + t * (dh + 1);
  float* S = V + t * dh;
  const int64_t row0 = static_cast<int64_t>(b) * t;
  load_head(q, row0, a, h, Q, dh);
  load_head(k, row0, a, h, K, dh + 1);
  load_head(v, row0, a, h, V, dh);
  __syncthreads();
  for (int i = threadIdx.x; i < t * t; i += blockDim.x) {
    const int r = i / t, s = i - r * t;
    float acc = 0.0f;
    for (int j = 0; j < dh; ++j) acc = fmaf(Q[r * dh + j], K[s * (dh + 1) + j], acc);
    S[r * (t + 1) + s] = __fmul_rn(a.scale, acc);
  }
  __syncthreads();
  for (int r = threadIdx.x; r < t; r += blockDim.x) {   // softmax of row r, as Attention::softmax_rows
    float* row = S + r * (t + 1);
    float mx = row[0];
    for (int s = 1; s < t; ++s) mx = mx < row[s] ? row[s] : mx;
    double sum = 0;
    for (int s = 0; s < t; ++s) {
      row[s] = expf(__fsub_rn(row[s], mx));
      sum = __dadd_rn(sum, static_cast<double>(row[s]));
    }
    const float inv = __double2float_rn(__ddiv_rn(1.0, sum));
    for (int s = 0; s < t; ++s) row[s] = __fmul_rn(row[s], inv);
  }
  __syncthreads();
  float* P = probs + (static_cast<int64_t>(b) * a.heads + h) * t * t;
  for (int i = threadIdx.x; i < t * t; i += blockDim.x) P[i] = S[(i / t) * (t + 1) + i % t];
  for (int i = threadIdx.x; i < t * dh; i += blockDim.x) {
    const int r = i / dh, j = i - r * dh;
    float acc = 0.0f;
    for (int s = 0; s < t; ++s) acc = fmaf(S[r * (t + 1) + s], V[s * dh + j], acc);
    o[(row0 + r) * ld_o + h * dh + j] = f32_to_bf16_bits(acc);
  }
}

// Shared memory: Q, K, V [t][dh+1], dO [t][dh], A, dA [t][t+1].
size_t attn_backward_smem(int64_t t, int64_t dh) {
  return 4 * static_cast<size_t>(3 * t * (dh + 1) + t * dh + 2 * t * (t + 1));
}

__global__ void attn_backward_kernel(const float* q, const float* k, const float* v, const float* probs,
                                     const float* dout, int64_t ld_do, AttnDims a, uint16_t* dq, uint16_t* dk,
                                     uint16_t* dv) {
  extern __shared__ float attn_smem[];
  const int t = a.t, dh = a.dh, h = blockIdx.x, b = blockIdx.y, ld = dh + 1;
  float* Q = attn_smem;
  float* K = Q + t * ld;
  float* V = K + t * ld;
  float* dO = V + t * ld;
  float* A = dO + t * dh;
  float* dA = A + t * (t + 1);
  const int64_t row0 = static_cast<int64_t>(b) * t;
  load_head(q, row0, a, h, Q, ld);
  load_head(k, row0, a, h, K, ld);
  load_head(v, row0, a, h, V, ld);
  for (int i = threadIdx.x; i < t * dh; i += blockDim.x) {
    const int r = i / dh, j = i - r * dh;
    dO[r * dh + j] = dout[(row0 + r) * ld_do + h * dh + j];
  }
  const float* P = probs + (static_cast<int64_t>(b) * a.heads + h) * t * t;
  for (int i = threadIdx.x; i < t * t; i += blockDim.x) A[(i / t) * (t + 1) + i % t] = P[i];
  __syncthreads();
  const int64_t col0 = static_cast<int64_t>(h) * dh;
  for (int i = threadIdx.x; i < t * t; i += blockDim.x) {   // dA = dO V^T
    const int r = i / t, s = i - r * t;
    float acc = 0.0f;
    for (int j = 0; j < dh; ++j) acc = fmaf(dO[r * dh + j], V[s * ld + j], acc);
    dA[r * (t + 1) + s] = acc;
  }
  for (int i = threadIdx.x; i < t * dh; i += blockDim.x) {  // dV = A^T dO
    const int s = i / dh, j = i - s * dh;
    float acc = 0.0f;
    for (int r = 0; r < t; ++r) acc = fmaf(A[r * (t + 1) + s], dO[r * dh + j], acc);
    dv[(row0 + s) * a.d + col0 + j] = f32_to_bf16_bits(acc);
  }
  __syncthreads();
  for (int r = threadIdx.x; r < t; r += blockDim.x) {   // as Attention::softmax_rows_backward
    const float* ar = A + r * (t + 1);
    float* dr = dA + r * (t + 1);
    double dot = 0;
    for (int s = 0; s < t; ++s) dot = __dadd_rn(dot, __dmul_rn(static_cast<double>(ar[s]), static_cast<double>(dr[s])));
    const float dotf = __double2float_rn(dot);
    for (int s = 0; s < t; ++s) dr[s] = __fmul_rn(__fmul_rn(a.scale, ar[s]), __fsub_rn(dr[s], dotf));
  }
  __syncthreads();
  for (int i = threadIdx.x; i < t * dh; i += blockDim.x) {
    const int r = i / dh, j = i - r * dh;
    float aq = 0.0f, ak = 0.0f;
    for (int s = 0; s < t; ++s) {
      aq = fmaf(dA[r * (t + 1) + s], K[s * ld + j], aq);   // dQ = dS K
      ak = fmaf(dA[s * (t + 1) + r], Q[s * ld + j], ak);   // dK = dS^T Q
    }
    dq[(row0 + r) * a.d + col0 + j] = f32_to_bf16_bits(aq);
    dk[(row0 + r) * a.d + col0 + j] = f32_to_bf16_bits(ak);
  }
}

AttnDims dims_of(const AttnShape& a) {
  check32(a.nb * a.t * a.d, "attention");
  return {static_cast<int>(a.t), static_cast<int>(a.d), static_cast<int>(a.d / a.heads), static_cast<int>(a.heads),
          a.scale};
}

}  // namespace

std::string layernorm_unsupported(int64_t d) {
  if (d < 1 || ln_rows(d, 2) < 1) {
    return "layernorm over " + std::to_string(d) + " features (the resident kernel stages rows of at most " +
           std::to_string(kSmemBytes / 8 - 1) + ")";
  }
  return {};
}

int64_t layernorm_partials(int64_t rows, int64_t d) { return 2 * ceil_div(rows, ln_rows(d, 2)) * d; }

void layernorm_forward(const uint16_t* x, int64_t rows, int64_t d, double eps, const float* gamma, const float* beta,
                       float* xhat, float* rstd, uint16_t* y, cudaStream_t s) {
  check32(rows * d, "layernorm");
  const int rpb = ln_rows(d, 1);
  const size_t smem = static_cast<size_t>(rpb) * (d + 1) * 4;
  ln_forward_kernel<<<static_cast<unsigned>(ceil_div(rows, rpb)), kThreads, smem, s>>>(
      x, rows, static_cast<int>(d), eps, gamma, beta, xhat, rstd, y, rpb);
  SAT_CUDA_LAUNCHED("ln_forward_kernel");
}

void layernorm_backward(const uint16_t* dy, const float* xhat, const float* rstd, int64_t rows, int64_t d,
                        const float* gamma, float* gamma_grad, float* beta_grad, double* partial, uint16_t* dx,
                        cudaStream_t s) {
  check32(rows * d, "layernorm");
  const int rpb = ln_rows(d, 2);
  const int64_t blocks = ceil_div(rows, rpb);
  const size_t smem = 2 * static_cast<size_t>(rpb) * (d + 1) * 4;
  ln_backward_kernel<<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(dy, xhat, rstd, rows, static_cast<int>(d),
                                                                           gamma, partial, dx, rpb);
  SAT_CUDA_LAUNCHED("ln_backward_kernel");
  ln_grad_finish<<<static_cast<unsigned>(ceil_div(d, kThreads)), kThreads, 0, s>>>(partial, blocks, static_cast<int>(d),
                                                                                   gamma_grad, beta_grad);
  SAT_CUDA_LAUNCHED("ln_grad_finish");
}

void gelu_forward(const uint16_t* x, int64_t n, bool tanh_form, uint16_t* y, cudaStream_t s) {
  gelu_kernel<<<blocks_for(n, "gelu"), kThreads, 0, s>>>(x, n, tanh_form, y);
  SAT_CUDA_LAUNCHED("gelu_kernel");
}

void gelu_backward(const uint16_t* x, const uint16_t* dy, int64_t n, bool tanh_form, uint16_t* dx, cudaStream_t s) {
  gelu_back_kernel<<<blocks_for(n, "gelu"), kThreads, 0, s>>>(x, dy, n, tanh_form, dx);
  SAT_CUDA_LAUNCHED("gelu_back_kernel");
}

void token_mean_forward(const uint16_t* x, int64_t nb, int64_t t, int64_t d, uint16_t* y, cudaStream_t s) {
  check32(nb * t * d, "token_mean");
  token_mean_kernel<<<blocks_for(nb * d, "token_mean"), kThreads, 0, s>>>(x, nb, t, d, y);
  SAT_CUDA_LAUNCHED("token_mean_kernel");
}

void token_mean_backward(const uint16_t* dy, int64_t nb, int64_t t, int64_t d, uint16_t* dx, cudaStream_t s) {
  token_mean_back_kernel<<<blocks_for(nb * t * d, "token_mean"), kThreads, 0, s>>>(dy, nb, t, d, dx);
  SAT_CUDA_LAUNCHED("token_mean_back_kernel");
}

void bias_pos_round(const float* acc, int64_t ld_acc, const float* bias, const float* pos, int64_t nb, int64_t t,
                    int64_t d, uint16_t* y, cudaStream_t s) {
  check32(nb * t * ld_acc, "patch_embed");
  bias_pos_round_kernel<<<blocks_for(nb * t * d, "patch_embed"), kThreads, 0, s>>>(acc, ld_acc, bias, pos, nb, t, d, y);
  SAT_CUDA_LAUNCHED("bias_pos_round_kernel");
}

void pos_grad(const uint16_t* dy, int64_t nb, int64_t t, int64_t d, float* grad, cudaStream_t s) {
  check32(nb * t * d, "patch_embed");
  pos_grad_kernel<<<blocks_for(t * d, "patch_embed"), kThreads, 0, s>>>(dy, nb, t, d, grad);
  SAT_CUDA_LAUNCHED("pos_grad_kernel");
}

void add_bias_f32(float* v, int64_t rows, int64_t c, const float* bias, cudaStream_t s) {
  if (!bias) return;
  add_bias_f32_kernel<<<blocks_for(rows * c, "bias"), kThreads, 0, s>>>(v, rows, c, bias);
  SAT_CUDA_LAUNCHED("add_bias_f32_kernel");
}

void add3_round(const float* a, const float* b, const float* c, int64_t n, uint16_t* out, cudaStream_t s) {
  add3_round_kernel<<<blocks_for(n, "attention"), kThreads, 0, s>>>(a, b, c, n, out);
  SAT_CUDA_LAUNCHED("add3_round_kernel");
}

std::string attention_unsupported(int64_t t, int64_t dh) {
  const size_t need = attn_backward_smem(t, dh) > attn_forward_smem(t, dh) ? attn_backward_smem(t, dh)
                                                                            : attn_forward_smem(t, dh);
  if (need > static_cast<size_t>(kSmemBytes)) {
    return "attention over " + std::to_string(t) + " tokens with heads of " + std::to_string(dh) +
           " features (the resident kernel keeps one image's head in " + std::to_string(kSmemBytes / 1024) +
           " KiB of shared memory; this needs " + std::to_string(need / 1024 + 1) + " KiB)";
  }
  return {};
}

void attention_forward(const float* q, const float* k, const float* v, const AttnShape& a, float* probs, uint16_t* o,
                       int64_t ld_o, cudaStream_t s) {
  const AttnDims dm = dims_of(a);
  const dim3 grid(static_cast<unsigned>(a.heads), static_cast<unsigned>(a.nb));
  attn_forward_kernel<<<grid, kThreads, attn_forward_smem(a.t, dm.dh), s>>>(q, k, v, dm, probs, o, ld_o);
  SAT_CUDA_LAUNCHED("attn_forward_kernel");
}

void attention_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout,
                        int64_t ld_do, const AttnShape& a, uint16_t* dq, uint16_t* dk, uint16_t* dv, cudaStream_t s) {
  const AttnDims dm = dims_of(a);
  const dim3 grid(static_cast<unsigned>(a.heads), static_cast<unsigned>(a.nb));
  attn_backward_kernel<<<grid, kThreads, attn_backward_smem(a.t, dm.dh), s>>>(q, k, v, probs, dout, ld_do, dm, dq, dk,
                                                                             dv);
  SAT_CUDA_LAUNCHED("attn_backward_kernel");
}

}  // namespace sat::cuda
