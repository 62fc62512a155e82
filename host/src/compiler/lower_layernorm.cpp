// Lowering of `layernorm` (host/src/layers/layernorm.cpp): normalisation over the last dimension d,
// every leading position (token) a row.
//   FF: one V_LN; it saves mean and rstd per row (FP32) for BP.
//   BP: one V_LN_BWD writing dx (BF16) and overwriting the FP32 gradients of gamma and beta.
#include <memory>

#include "compiler/lower_norm.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class LayerNormLowering final : public NormLowering {
 public:
  LayerNormLowering() : NormLowering(isa::OP_V_LN_BWD, "d") {}

  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    if (layer.in_shape.empty()) lw.fail("input shape is empty");
    width_ = layer.in_shape.back();
    rows_ = lw.batch() * (sat::numel(layer.in_shape) / width_);
    lw.check_row(width_, "layer-norm");
    if (x.dtype != DType::bf16 || x.numel() != rows_ * width_) {
      lw.fail("expected a BF16 input of " + std::to_string(rows_ * width_) + " elements, got " +
              std::to_string(x.numel()));
    }
    const TensorRef y = begin_forward(lw, layer, x, rows_);
    const float eps = static_cast<float>(layer.attrs().value("eps", 1e-5));
    const TensorRef g = lw.param_ref(gamma_), b = lw.param_ref(beta_);
    lw.emit_vec(Lowering::insn(isa::OP_V_LN, 0,
                               {{isa::f_V_LN::x, lw.addr(x)},
                                {isa::f_V_LN::y, lw.addr(y)},
                                {isa::f_V_LN::gamma, lw.addr(g)},
                                {isa::f_V_LN::beta, lw.addr(b)},
                                {isa::f_V_LN::mean, lw.addr(mean_)},
                                {isa::f_V_LN::rstd, lw.addr(rstd_)},
                                {isa::f_V_LN::rows, lw.u32(rows_, "rows")},
                                {isa::f_V_LN::d, lw.u32(width_, "d")},
                                {isa::f_V_LN::eps, Lowering::f32(eps)}}),
                {x, g, b}, {y, mean_, rstd_});
    return y;
  }
};

}  // namespace

std::unique_ptr<LayerLowering> make_layernorm_lowering() {
  return std::make_unique<LayerNormLowering>();
}

}  // namespace sat::compiler
