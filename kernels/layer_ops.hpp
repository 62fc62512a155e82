#pragma once
// The host-callable interface of the layer kernels (layer_kernels.cu): what the GPU-resident step
// (resident.cpp) runs between the products. Plain C++, device pointers, asynchronous on `stream`.
//
// Layout: activations and gradients are BF16 bit patterns, channels last. An activation of per-sample
// shape [C, H, W] is a matrix [B*H*W][C] (row b*H*W + y*W + x), one of shape [F] a matrix [B][F].
// That is the products' operand layout (a row per output position), so a convolution's output
// needs no transpose, and BatchNorm reduces each column.
//
// Each kernel computes what its CPU layer (host/src/layers/) computes, in the same precision where
// the CPU uses double (statistics, sums of BatchNorm and global pooling), and rounds to BF16 where the
// CPU layer stores its result; docs/cuda.md lists where the order of a sum differs.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "ops.hpp"
#include "sat/conv_geometry.hpp"

namespace sat::cuda {

// in BF16 [nb][c][hw] (the host tensor's layout) -> out BF16 [nb*hw][c].
void nchw_to_nhwc(const uint16_t* in, int64_t nb, int64_t c, int64_t hw, uint16_t* out, cudaStream_t s);
// The inverse: in [nb*hw][c] -> out [nb][c][hw] (flatten's order on the CPU: channel-major).
void nhwc_to_nchw(const uint16_t* in, int64_t nb, int64_t c, int64_t hw, uint16_t* out, cudaStream_t s);

// Which lowering kernels (lowering_nhwc.cu), all with the same bits: `configured`, the process's
// choice (SAT_CUDA_LOWERING=fast or rows, else each direction's faster kernel); `fast`, the fast kernels
// where they take the shape (the row kernels elsewhere); `rows`, the row kernels.
enum class LoweringKernels { configured, fast, rows };
// Convolution lowering from channels-last BF16 images x [nb*h*w][cin] into the product's input rows
// out [nb*oh*ow][ld] (columns (c, ky, kx) as sat/conv_geometry.hpp orders them; >= cin*k*k zero).
void im2col_nhwc(const uint16_t* x, const ConvGeometry& g, int64_t nb, uint16_t* out, int64_t ld, cudaStream_t s,
                 LoweringKernels kernels = LoweringKernels::configured);
// The adjoint: dcol FP32 [nb*oh*ow][ld] -> dx BF16 [nb*h*w][cin], each pixel summed in the host
// col2im's order, then rounded.
void col2im_nhwc(const float* dcol, int64_t ld, const ConvGeometry& g, int64_t nb, uint16_t* dx, cudaStream_t s,
                 LoweringKernels kernels = LoweringKernels::configured);

// Transposed BP (conv_dgrad.cu): the input gradient of a stride-1 convolution as a convolution of
// its output gradient, dX [nb*h*w][cin] = rows(dY) x W'^T in one product, instead of BP's FP32 rows
// [nb*oh*ow][cin*k*k] and col2im. g is the forward geometry, cout its output channels.
// W'[c][(ky', kx', co)] = W[co][(c, k-1-ky', k-1-kx')]: columns channel-minor, so W_B's groups along
// Cout stay groups of consecutive positions and W' in N:M form holds exactly W_B's kept entries.
// Whether the transposed form exists: stride 1, padding at most k-1 (and k > 1: a 1x1 needs no
// lowering either way).
bool dgrad_applies(const ConvGeometry& g);
// The geometry of that convolution: dY's map (cout channels) padded by k-1-p, the input's map out.
ConvGeometry dgrad_geometry(const ConvGeometry& g, int64_t cout);
// dY [nb*oh*ow][cout] -> out [nb*h*w][ld], row (b, iy, ix), columns (ky', kx', co):
// dY[b][iy-(k-1-p)+ky'][ix-(k-1-p)+kx'][co], zero outside the map; columns >= k*k*cout zero.
void dgrad_rows_nhwc(const uint16_t* dy, const ConvGeometry& g, int64_t cout, int64_t nb, uint16_t* out, int64_t ld,
                     cudaStream_t s);
// A strided convolution's BP as the same transposed convolution over dY dilated by the stride
// (zeros between its pixels): stride > 1, padding at most k-1 (any k, 1x1 included).
bool strided_dgrad_applies(const ConvGeometry& g);
// dY [nb*oh*ow][cout] -> the dilated map [nb][(oh-1)s+1][(ow-1)s+1][cout], every element written.
void dilate_nhwc(const uint16_t* dy, const ConvGeometry& g, int64_t cout, int64_t nb, uint16_t* out, cudaStream_t s);
// The transposed BP as spmm_implicit's geometry, any stride: the image is dY dilated by the stride
// ((oh-1)s+1 rows; dY itself for stride 1) [nb][..][..][cout], padding k-1-p, the input's map
// (h, w) out.
ImplicitConv dgrad_implicit(const ConvGeometry& g, int64_t cout, int64_t nb);
// W' in N:M form from W_B (bwd: the backward form of the [cout][cin*k*k] weight), both the
// NMCompressed arrays and, where bwd has it, the 2:4 re-pack: entries moved, never selected again.
// Empty when bwd can be rearranged; otherwise why not (a 2:4 re-pack needs cout % 4 == 0).
std::string dgrad_form_unusable(const DevNM& bwd, const ConvGeometry& g);
DevNM alloc_dgrad_form(const DevNM& bwd, const ConvGeometry& g);   // free with free_devnm
void dgrad_form(const DevNM& bwd, const ConvGeometry& g, DevNM& out, cudaStream_t s);
// W' dense: w BF16 [cout][cin*k*k] -> out [cin][k*k*cout].
void dgrad_dense(const uint16_t* w, const ConvGeometry& g, int64_t cout, uint16_t* out, cudaStream_t s);

// Copies BF16 rows [rows][cols] into [rows][ld] with zero columns cols..ld-1 (a product's input).
void pad_rows(const uint16_t* in, int64_t rows, int64_t cols, uint16_t* out, int64_t ld, cudaStream_t s);

// Product epilogue: y BF16 [rows][c] = round(acc FP32 [rows][ld_acc] + bias[c]) (bias may be null).
void bias_round(const float* acc, int64_t ld_acc, const float* bias, int64_t rows, int64_t c, uint16_t* y,
                cudaStream_t s);

// Column sums in double of BF16 [rows][c]: grad[j] += float(sum_i dy[i][j]) (a bias gradient).
// partial: scratch of at least column_partials(rows, c) doubles.
int64_t column_partials(int64_t rows, int64_t c);
void bias_grad(const uint16_t* dy, int64_t rows, int64_t c, double* partial, float* grad, cudaStream_t s);

// BatchNorm2d on [rows][c] (rows = batch * positions).
// Training forward: batch mean and biased variance per channel (double), the running statistics
// moved towards them (unbiased variance, `momentum`), y = round(gamma * xhat + beta);
// mean/invstd (double, per channel) are kept for backward.
// relu: a ReLU fused after it (y = relu_forward's result, the same bits), where bn_relu_fusable.
// given_chunks > 0: `partial` already holds x's column partials in that many chunks (sums at
// partial[k * c + j], sums of squares at partial[(given_chunks + k) * c + j]), as the product that
// wrote x gave them (spmm's line_stats): the pass over x that would compute them is skipped.
bool bn_relu_fusable(int64_t rows, int64_t c, const void* x, const void* y);
void bn_forward_train(const uint16_t* x, int64_t rows, int64_t c, double eps, double momentum, const float* gamma,
                      const float* beta, float* running_mean, float* running_var, double* mean, double* invstd,
                      double* partial, uint16_t* y, cudaStream_t s, bool relu = false, int64_t given_chunks = 0);
// Inference: normalised with the running statistics.
void bn_forward_eval(const uint16_t* x, int64_t rows, int64_t c, double eps, const float* gamma, const float* beta,
                     const float* running_mean, const float* running_var, uint16_t* y, cudaStream_t s,
                     bool relu = false);
// Backward: gamma_grad += sum dy*xhat, beta_grad += sum dy,
// dx = round(gamma * invstd * (dy - mean(dy) - xhat * mean(dy*xhat))).
// relu_y: the fused ReLU's output (the forward's y), whose zeros gate dy first as relu_backward
// would; null when no ReLU is fused.
void bn_backward(const uint16_t* x, const uint16_t* dy, int64_t rows, int64_t c, const double* mean,
                 const double* invstd, const float* gamma, float* gamma_grad, float* beta_grad, double* partial,
                 uint16_t* dx, cudaStream_t s, const uint16_t* relu_y = nullptr);

// ReLU on BF16 bits (positive: sign clear and not zero, as the CPU layer); backward passes dy where
// the forward's output y is non-zero. n elements.
void relu_forward(const uint16_t* x, int64_t n, uint16_t* y, cudaStream_t s);
void relu_backward(const uint16_t* y, const uint16_t* dy, int64_t n, uint16_t* dx, cudaStream_t s);
// out = round(a + b) in FP32: the residual join, forward and backward. relu: a ReLU fused after it
// (out = relu_forward of the sum, the same bits).
void add_round(const uint16_t* a, const uint16_t* b, int64_t n, uint16_t* out, cudaStream_t s, bool relu = false);
// out = round(a + relu_backward(y, dy)): the residual's backward join where a ReLU fused after the
// add gates its gradient (y: that ReLU's output), the same bits as the two passes.
void add_gated(const uint16_t* a, const uint16_t* dy, const uint16_t* y, int64_t n, uint16_t* out, cudaStream_t s);

// Pooling on channels-last [nb*h*w][c] -> [nb*oh*ow][c]. Window geometry as the CPU's Pool2d
// (padding clipped; max: first maximum wins, a NaN wins; average: divides by k*k).
struct PoolGeometry {
  int64_t c, h, w, k, s, p, oh, ow;
};
void maxpool_forward(const uint16_t* x, const PoolGeometry& g, int64_t nb, uint16_t* y, int32_t* argmax,
                     cudaStream_t s);
void maxpool_backward(const uint16_t* dy, const int32_t* argmax, const PoolGeometry& g, int64_t nb, uint16_t* dx,
                      cudaStream_t s);
void avgpool_forward(const uint16_t* x, const PoolGeometry& g, int64_t nb, uint16_t* y, cudaStream_t s);
void avgpool_backward(const uint16_t* dy, const PoolGeometry& g, int64_t nb, uint16_t* dx, cudaStream_t s);
// Global average over [nb*hw][c] -> [nb][c] (sum in double); backward spreads dy / hw.
void gap_forward(const uint16_t* x, int64_t nb, int64_t hw, int64_t c, uint16_t* y, cudaStream_t s);
void gap_backward(const uint16_t* dy, int64_t nb, int64_t hw, int64_t c, uint16_t* dx, cudaStream_t s);

// The loss around softmax_xent (ops.hpp): logits BF16 [b][c] -> FP32 scratch; after softmax_xent,
// dlogits FP32 -> BF16; the batch's loss (mean, double) and correct count summed on the device into
// out[0] (double) and *correct, so that one small copy brings the step's result back.
void bf16_rows_to_f32(const uint16_t* in, int64_t n, float* out, cudaStream_t s);
void f32_to_bf16(const float* in, int64_t n, uint16_t* out, cudaStream_t s);
void loss_sum(const double* row_loss, const int* row_correct, int64_t b, double* loss, int* correct, cudaStream_t s);

// Sets *flag to 1 when some of the n values is not finite (BatchNorm's running statistics).
void flag_nonfinite(const float* v, int64_t n, int* flag, cudaStream_t s);

}  // namespace sat::cuda
