#pragma once
// The plug-in point of a device backend that keeps the layer graph on the host but runs the three
// products of every weight layer itself (the `cuda` backend does). The backend passes its router in
// StepContext::router for the length of a forward or backward call; the weight layers hand their
// products to it instead of computing them on the CPU. Nothing is installed process-wide, so two
// backends (or two threads) never see each other's router.
// The pointers are the same host arrays the CPU products read and write (feature-major: a matrix
// [features][cols] whose columns are samples, or samples x output positions).
#include <cstdint>

#include "sat/conv_geometry.hpp"
#include "sat/layer.hpp"

namespace sat {

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
  // FF: yt [cout][cols] = W_F xt;  BP: dxt [k][cols] = W_B^T dyt;  WU: w.weight->grad += dyt xt^T.
  virtual void ff(const SparseWeight& w, Method method, const float* xt, int64_t cols, float* yt) = 0;
  virtual void bp(const SparseWeight& w, Method method, const float* dyt, int64_t cols, float* dxt) = 0;
  virtual void wu(const SparseWeight& w, const float* dyt, const float* xt, int64_t cols) = 0;
};

}  // namespace sat
