// flatten: the CPU flattens a sample in (c, h, w) order, DRAM holds it (h, w, c). V_PERMUTE
// reorders [B][HW][C] -> [B][C][HW] forward and back; any other input (already row-major the same
// way in both layouts, or a 1x1 image) is a plain alias with no instruction.
#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class FlattenLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    x_shape_ = x.shape;
    const Shape out = dram_shape(lw.batch(), layer.out_shape);
    permute_ = layer.in_shape.size() == 3 && layer.in_shape[1] * layer.in_shape[2] > 1 &&
               layer.in_shape[0] > 1;
    if (!permute_) {
      TensorRef y = x;
      y.shape = out;
      return y;
    }
    c_ = layer.in_shape[0];
    hw_ = layer.in_shape[1] * layer.in_shape[2];
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, out);
    lw.emit_vec(Lowering::insn(isa::OP_V_PERMUTE, 0,
                               {{isa::f_V_PERMUTE::x, lw.addr(x)},
                                {isa::f_V_PERMUTE::y, lw.addr(y)},
                                {isa::f_V_PERMUTE::outer, lw.u32(lw.batch(), "outer")},
                                {isa::f_V_PERMUTE::rows, lw.u32(hw_, "rows")},
                                {isa::f_V_PERMUTE::cols, lw.u32(c_, "cols")}}),
                {x}, {y});
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!need_dx) return {};
    if (!permute_) {
      TensorRef dx = dy;
      dx.shape = x_shape_;
      return dx;
    }
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, x_shape_);
    lw.emit_vec(Lowering::insn(isa::OP_V_PERMUTE, 0,
                               {{isa::f_V_PERMUTE::x, lw.addr(dy)},
                                {isa::f_V_PERMUTE::y, lw.addr(dx)},
                                {isa::f_V_PERMUTE::outer, lw.u32(lw.batch(), "outer")},
                                {isa::f_V_PERMUTE::rows, lw.u32(c_, "rows")},
                                {isa::f_V_PERMUTE::cols, lw.u32(hw_, "cols")}}),
                {dy}, {dx});
    return dx;
  }

 private:
  Shape x_shape_;
  bool permute_ = false;
  int64_t c_ = 0, hw_ = 0;
};

}  // namespace

std::unique_ptr<LayerLowering> make_flatten_lowering() { return std::make_unique<FlattenLowering>(); }

}  // namespace sat::compiler
