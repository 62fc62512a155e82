// Lowering of `gelu` (host/src/layers/gelu.cpp): one V_GELU over the whole activation in FF, one
// V_GELU_BWD at the saved input in BP. The form (erf or tanh) comes from the layer's "tanh" attr and
// sets flag b0 of both instructions.
#include <memory>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class GeluLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    const int64_t n = lw.batch() * sat::numel(layer.in_shape);
    if (x.dtype != DType::bf16 || x.numel() != n) {
      lw.fail("expected a BF16 input of " + std::to_string(n) + " elements, got " +
              std::to_string(x.numel()));
    }
    tanh_ = layer.attrs().value("tanh", false);
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, x.shape);
    lw.emit_vec(Lowering::insn(isa::OP_V_GELU, tanh_ ? 1 : 0,
                               {{isa::f_V_GELU::x, lw.addr(x)},
                                {isa::f_V_GELU::y, lw.addr(y)},
                                {isa::f_V_GELU::count, lw.u32(n, "count")}}),
                {x}, {y});
    return y;
  }

  // No parameters: without need_dx there is nothing to compute.
  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    if (!need_dx) return {};
    check_dy(lw, dy, x_.numel());
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, x_.shape);
    lw.emit_vec(Lowering::insn(isa::OP_V_GELU_BWD, tanh_ ? 1 : 0,
                               {{isa::f_V_GELU_BWD::x, lw.addr(x_)},
                                {isa::f_V_GELU_BWD::dy, lw.addr(dy)},
                                {isa::f_V_GELU_BWD::dx, lw.addr(dx)},
                                {isa::f_V_GELU_BWD::count, lw.u32(x_.numel(), "count")}}),
                {x_, dy}, {dx});
    return dx;
  }

 private:
  TensorRef x_;
  bool tanh_ = false;
};

}  // namespace

std::unique_ptr<LayerLowering> make_gelu_lowering() { return std::make_unique<GeluLowering>(); }

}  // namespace sat::compiler
