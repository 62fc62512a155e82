// Lowering of `layernorm` (host/src/layers/layernorm.cpp): normalisation over the last dimension d,
// every leading position (token) a row.
//   FF: one V_LN; it saves mean and rstd per row (FP32) for BP.
//   BP: one V_LN_BWD writing dx (BF16) and overwriting the FP32 gradients of gamma and beta.
#include <memory>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

Param* need_param(Lowering& lw, Layer& layer, const char* suffix) {
  Param* p = lw.param(layer, suffix);
  if (!p) lw.fail(std::string("has no parameter '") + suffix + "'");
  return p;
}

class LayerNormLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    if (layer.in_shape.empty()) lw.fail("input shape is empty");
    d_ = layer.in_shape.back();
    rows_ = lw.batch() * (sat::numel(layer.in_shape) / d_);
    lw.check_row(d_, "layer-norm");
    if (x.dtype != DType::bf16 || x.numel() != rows_ * d_) {
      lw.fail("expected a BF16 input of " + std::to_string(rows_ * d_) + " elements, got " +
              std::to_string(x.numel()));
    }
    gamma_ = need_param(lw, layer, ".weight");
    beta_ = need_param(lw, layer, ".bias");
    const float eps = static_cast<float>(layer.attrs().value("eps", 1e-5));

    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, x.shape);
    mean_ = lw.alloc(layer.name + ".mean", RegionKind::stats, {rows_}, DType::f32);
    rstd_ = lw.alloc(layer.name + ".rstd", RegionKind::stats, {rows_}, DType::f32);
    const TensorRef g = lw.param_ref(gamma_), b = lw.param_ref(beta_);
    lw.emit_vec(Lowering::insn(isa::OP_V_LN, 0,
                               {{isa::f_V_LN::x, lw.addr(x)},
                                {isa::f_V_LN::y, lw.addr(y)},
                                {isa::f_V_LN::gamma, lw.addr(g)},
                                {isa::f_V_LN::beta, lw.addr(b)},
                                {isa::f_V_LN::mean, lw.addr(mean_)},
                                {isa::f_V_LN::rstd, lw.addr(rstd_)},
                                {isa::f_V_LN::rows, lw.u32(rows_, "rows")},
                                {isa::f_V_LN::d, lw.u32(d_, "d")},
                                {isa::f_V_LN::eps, Lowering::f32(eps)}}),
                {x, g, b}, {y, mean_, rstd_});
    return y;
  }

  // dL/dgamma and dL/dbeta are always written (the update reads them); the same instruction writes
  // dx, into a scratch region when the caller does not want it.
  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    if (dy.dtype != DType::bf16 || dy.numel() != x_.numel()) {
      lw.fail("expected a BF16 output gradient of " + std::to_string(x_.numel()) +
              " elements, got " + std::to_string(dy.numel()));
    }
    const TensorRef dx = lw.alloc(layer.name + (need_dx ? ".dx" : ".dx_unused"),
                                  RegionKind::gradient, x_.shape);
    const TensorRef g = lw.param_ref(gamma_);
    const TensorRef dg = lw.grad_ref(gamma_), db = lw.grad_ref(beta_);
    if (lw.region_written(dg.region) || lw.region_written(db.region)) {
      lw.fail("gamma/beta gradients written twice in one step (V_LN_BWD overwrites them)");
    }
    lw.emit_vec(Lowering::insn(isa::OP_V_LN_BWD, 0,
                               {{isa::f_V_LN_BWD::x, lw.addr(x_)},
                                {isa::f_V_LN_BWD::dy, lw.addr(dy)},
                                {isa::f_V_LN_BWD::dx, lw.addr(dx)},
                                {isa::f_V_LN_BWD::gamma, lw.addr(g)},
                                {isa::f_V_LN_BWD::dgamma, lw.addr(dg)},
                                {isa::f_V_LN_BWD::dbeta, lw.addr(db)},
                                {isa::f_V_LN_BWD::mean, lw.addr(mean_)},
                                {isa::f_V_LN_BWD::rstd, lw.addr(rstd_)},
                                {isa::f_V_LN_BWD::rows, lw.u32(rows_, "rows")},
                                {isa::f_V_LN_BWD::d, lw.u32(d_, "d")}}),
                {x_, dy, g, mean_, rstd_}, {dx, dg, db});
    return need_dx ? dx : TensorRef{};
  }

 private:
  TensorRef x_, mean_, rstd_;
  Param* gamma_ = nullptr;
  Param* beta_ = nullptr;
  int64_t d_ = 0, rows_ = 0;
};

}  // namespace

std::unique_ptr<LayerLowering> make_layernorm_lowering() {
  return std::make_unique<LayerNormLowering>();
}

}  // namespace sat::compiler
