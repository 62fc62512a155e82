#pragma once
// The three products of a BDWP training step for one weight W[cout][k], in feature-major layout
// (a matrix [features][P] whose P columns are samples, or samples x output positions).
// Which operand each product reads under which method is decided here and nowhere else:
//   FF: Yt = W_F * Xt            (N:M along K; dense W under `dense`)
//   BP: dXt = W_B^T * dYt        (N:M along Cout under bdwp; dense W_F under srste; W under dense)
//   WU: dW += dYt * Xt^T         (always dense, FP32 into weight->grad)
#include <cstdint>

#include "sat/conv_geometry.hpp"
#include "sat/layer.hpp"

namespace sat::cpu {

// A device backend (cuda) keeps the layer graph on the host but runs the three products itself: it
// installs a router for the length of its step, and the products below hand their work to it.
// The pointers are the same host arrays the CPU products read and write.
class ProductRouter {
 public:
  virtual ~ProductRouter() = default;
  // Optional whole-convolution entries, on the raw images x [nb][cin][h][w] instead of the lowered
  // col[cin*k*k][nb*oh*ow] (im2col order (c, ky, kx); columns b*oh*ow + oy*ow + ox): the router
  // lowers on its side, so that only the raw images travel. Return false to decline (the layer
  // then lowers on the host and calls ff/bp/wu).
  //   conv_ff:       yt [cout][nb*oh*ow] = the FF product of the lowered x;
  //   conv_backward: the WU product of dyt [cout][nb*oh*ow] and the lowered x into the weight's
  //                  gradient, and (dx not null) dx [nb][cin][h][w] = col2im of the BP product.
  virtual bool conv_ff(const SparseWeight& w, Method method, const ConvGeometry& g, const float* x, int64_t nb,
                       float* yt) {
    return false;
  }
  virtual bool conv_backward(const SparseWeight& w, Method method, const ConvGeometry& g, const float* x, int64_t nb,
                             const float* dyt, float* dx) {
    return false;
  }
  virtual void ff(const SparseWeight& w, Method method, const float* xt, int64_t cols, float* yt) = 0;
  virtual void bp(const SparseWeight& w, Method method, const float* dyt, int64_t cols,
                  float* dxt) = 0;
  virtual void wu(const SparseWeight& w, const float* dyt, const float* xt, int64_t cols) = 0;
};
// Installs `r` (nullptr: the CPU products); returns the router it replaces.
ProductRouter* set_product_router(ProductRouter* r);

void ff_product(const SparseWeight& w, Method method, const float* xt, int64_t cols, float* yt);
void bp_product(const SparseWeight& w, Method method, const float* dyt, int64_t cols, float* dxt);
void wu_product(const SparseWeight& w, const float* dyt, const float* xt, int64_t cols);
// The installed router's whole-convolution entries; false where none is installed or it declines.
bool routed_conv_ff(const SparseWeight& w, Method method, const ConvGeometry& g, const float* x, int64_t nb,
                    float* yt);
bool routed_conv_backward(const SparseWeight& w, Method method, const ConvGeometry& g, const float* x, int64_t nb,
                          const float* dyt, float* dx);

// The multiply-adds each product performs per column of P (for summaries and benchmarks).
double ff_macs_per_col(const SparseWeight& w, Method method);
double bp_macs_per_col(const SparseWeight& w, Method method);

}  // namespace sat::cpu
