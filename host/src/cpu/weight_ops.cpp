#include "cpu/weight_ops.hpp"

#include "sat/cpu_kernels.hpp"
#include "sat/error.hpp"

namespace sat::cpu {

namespace {
// The forms are made by pre-generation; reading one that was never made is a caller's bug that
// would otherwise crash deep in a kernel.
void require(bool made, const SparseWeight& w, const char* form, Method method) {
  if (!made) {
    throw Error(w.weight->name + ": the " + form + " weight form for method " + method_name(method) +
                " was not generated (call SparseWeight::regenerate / Model::regenerate first)");
  }
}
}  // namespace

void ff_product(const SparseWeight& w, const StepContext& ctx, const float* xt, int64_t cols, float* yt) {
  const Method method = ctx.method;
  if (ctx.router) return ctx.router->ff(w, method, xt, cols, yt);
  if (w.ff_sparse(method)) {
    require(w.fwd.nm.m > 0 && w.fwd.nnz() > 0, w, "forward N:M", method);
    spmm_nm(w.fwd, xt, cols, cols, yt, cols);
  } else {
    require(static_cast<int64_t>(w.dense.size()) == w.cout * w.k, w, "dense", method);
    sgemm(false, false, w.cout, cols, w.k, 1.0f, w.dense.data(), w.k, xt, cols, 0.0f, yt, cols);
  }
}

void bp_product(const SparseWeight& w, const StepContext& ctx, const float* dyt, int64_t cols, float* dxt) {
  const Method method = ctx.method;
  if (ctx.router) return ctx.router->bp(w, method, dyt, cols, dxt);
  if (w.bp_sparse(method)) {
    require(w.bwd.nm.m > 0 && w.bwd.nnz() > 0, w, "backward N:M", method);
    spmm_nm(w.bwd, dyt, cols, cols, dxt, cols);
  } else {
    require(static_cast<int64_t>(w.dense.size()) == w.cout * w.k, w, "dense", method);
    sgemm(true, false, w.k, cols, w.cout, 1.0f, w.dense.data(), w.k, dyt, cols, 0.0f, dxt, cols);
  }
}

void wu_product(const SparseWeight& w, const StepContext& ctx, const float* dyt, const float* xt, int64_t cols) {
  if (ctx.router) return ctx.router->wu(w, dyt, xt, cols);
  sgemm(false, true, w.cout, w.k, cols, 1.0f, dyt, cols, xt, cols, 1.0f, w.weight->grad.data(),
        w.k);
}

bool routed_conv_ff(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* x, int64_t nb,
                    float* yt) {
  return ctx.router && ctx.router->conv_ff(w, ctx.method, g, x, nb, yt);
}

bool routed_conv_backward(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* x,
                          int64_t nb, const float* dyt, float* dx) {
  return ctx.router && ctx.router->conv_backward(w, ctx.method, g, x, nb, dyt, dx);
}

bool conv_ff_on_images(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* x,
                       int64_t nb, std::vector<float>& xpad, float* yt) {
  if (ctx.router || !w.ff_sparse(ctx.method) || conv_lowering_forced()) return false;
  require(w.fwd.nm.m > 0 && w.fwd.nnz() > 0, w, "forward N:M", ctx.method);
  conv_pad_images(g, x, nb, xpad);
  spmm_nm_conv_ff(w.fwd, g, xpad.data(), nb, yt, nb * g.oh * g.ow);
  return true;
}

bool conv_bp_on_images(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* dyt,
                       int64_t ld, int64_t nb, float* dx) {
  if (ctx.router || !w.bp_sparse(ctx.method) || conv_lowering_forced()) return false;
  require(w.bwd.nm.m > 0 && w.bwd.nnz() > 0, w, "backward N:M", ctx.method);
  spmm_nm_conv_bp(w.bwd, g, dyt, ld, nb, dx);
  return true;
}

bool conv_wu_on_images(const SparseWeight& w, const StepContext& ctx, const ConvGeometry& g, const float* xpad,
                       const float* dy, int64_t nb) {
  if (ctx.router) return false;
  conv_wu(g, w.cout, xpad, dy, nb, w.weight->grad.data());
  return true;
}

double ff_macs_per_col(const SparseWeight& w, Method method) {
  const double dense = static_cast<double>(w.cout) * static_cast<double>(w.k);
  return w.ff_sparse(method) ? dense * w.nm.n / w.nm.m : dense;
}

double bp_macs_per_col(const SparseWeight& w, Method method) {
  const double dense = static_cast<double>(w.cout) * static_cast<double>(w.k);
  return w.bp_sparse(method) ? dense * w.nm.n / w.nm.m : dense;
}

}  // namespace sat::cpu
