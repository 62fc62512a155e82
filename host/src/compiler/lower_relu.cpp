// relu: V_RELU forward; V_RELU_BWD passes dy where the saved input is positive.
#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class ReluLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, x.shape);
    lw.emit_vec(Lowering::insn(isa::OP_V_RELU, 0,
                               {{isa::f_V_RELU::x, lw.addr(x)},
                                {isa::f_V_RELU::y, lw.addr(y)},
                                {isa::f_V_RELU::count, lw.u32(x.numel(), "count")}}),
                {x}, {y});
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!need_dx) return {};
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, x_.shape);
    lw.emit_vec(Lowering::insn(isa::OP_V_RELU_BWD, 0,
                               {{isa::f_V_RELU_BWD::x, lw.addr(x_)},
                                {isa::f_V_RELU_BWD::dy, lw.addr(dy)},
                                {isa::f_V_RELU_BWD::dx, lw.addr(dx)},
                                {isa::f_V_RELU_BWD::count, lw.u32(dx.numel(), "count")}}),
                {x_, dy}, {dx});
    return dx;
  }

 private:
  TensorRef x_;
};

// A ReLU the layer before it took into its own instructions (LayerLowering::fuse_relu): its output
// is that layer's, and its dy goes to that layer's backward unmasked (it masks).
class FusedReluLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering&, Layer&, const TensorRef& x) override { return x; }
  TensorRef backward(Lowering&, Layer&, const TensorRef& dy, bool need_dx) override {
    return need_dx ? dy : TensorRef{};
  }
};

}  // namespace

std::unique_ptr<LayerLowering> make_relu_lowering() { return std::make_unique<ReluLowering>(); }
std::unique_ptr<LayerLowering> make_fused_relu_lowering() { return std::make_unique<FusedReluLowering>(); }

}  // namespace sat::compiler
