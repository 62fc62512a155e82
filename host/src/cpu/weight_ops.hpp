#pragma once
// The three products of a BDWP training step for one weight W[cout][k], in feature-major layout
// (a matrix [features][P] whose P columns are samples, or samples x output positions).
// Which operand each product reads under which method is decided here and nowhere else:
//   FF: Yt = W_F * Xt            (N:M along K; dense W under `dense`)
//   BP: dXt = W_B^T * dYt        (N:M along Cout under bdwp; dense W_F under srste; W under dense)
//   WU: dW += dYt * Xt^T         (always dense, FP32 into weight->grad)
#include <cstdint>
#include <vector>

#include "sat/conv_geometry.hpp"
#include "sat/layer.hpp"
#include "sat/product_router.hpp"

namespace sat::cpu {

// Each product goes to ctx.router where the step has one (sat/product_router.hpp), else runs here.
void ff_product(const SparseWeight& w, const StepContext& ctx, const float* xt, int64_t cols, float* yt);
void bp_product(const SparseWeight& w, const StepContext& ctx, const float* dyt, int64_t cols, float* dxt);
void wu_product(const SparseWeight& w, const StepContext& ctx, const float* dyt, const float* xt, int64_t cols);
// The router's whole-convolution entries; false where the step has no router or it declines.
bool routed_conv_ff(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* x, int64_t nb,
                    float* yt);
bool routed_conv_backward(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* x,
                          int64_t nb, const float* dyt, float* dx);

// A convolution's N:M FF (over W_F) and BP (over W_B) on its images, without the lowered matrix
// (sat/cpu_kernels.hpp: spmm_nm_conv_ff / _bp; the same bits as the lowered products). True where
// they ran: the product is N:M, runs on the CPU (no router) and lowering is not forced; false
// leaves it to the lowered path (ff_product / bp_product). xpad: scratch for the padded images.
bool conv_ff_on_images(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* x,
                       int64_t nb, std::vector<float>& xpad, float* yt);
bool conv_bp_on_images(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* dyt,
                       int64_t ld, int64_t nb, float* dx);

// WU of a convolution on its images (cpu::conv_wu: dense, no lowered matrix) into w.weight->grad,
// from dy[nb][cout][oh][ow] and the images padded by cpu::conv_pad_images. False where a router
// takes the step's products (it then gets the lowered WU, wu_product).
bool conv_wu_on_images(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* xpad,
                       const float* dy, int64_t nb);

// The multiply-adds each product performs per column of P (for summaries and benchmarks).
double ff_macs_per_col(const SparseWeight& w, Method method);
double bp_macs_per_col(const SparseWeight& w, Method method);

}  // namespace sat::cpu
