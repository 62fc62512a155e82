// Lowering of `residual` (host/src/layers/residual.cpp), a container: y = body(x) + shortcut(x), the
// shortcut being the identity when its branch is empty. The branches are lowered by the framework
// (forward_sequence / backward_sequence, each child with its own lowering); this layer adds only
// the two V_ADDs (BF16 + BF16 -> BF16, summed in FP32 and rounded once, as the CPU reference does):
//   FF: y  = body(x) + shortcut(x)
//   BP: dx = dbody + dshortcut, both branches back-propagating the same dy (body first, then the
//       shortcut; the identity's gradient is dy itself).
#include <memory>
#include <vector>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

void check(Lowering& lw, const char* what, const TensorRef& t, int64_t count) {
  if (!t.valid()) lw.fail(std::string("the ") + what + " is missing");
  if (t.dtype != DType::bf16 || t.numel() != count) {
    lw.fail(std::string("the ") + what + " has " + std::to_string(t.numel()) + " " +
            (t.dtype == DType::bf16 ? "BF16" : "FP32") + " elements, expected " +
            std::to_string(count) + " BF16");
  }
}

void add(Lowering& lw, const TensorRef& a, const TensorRef& b, const TensorRef& y) {
  lw.emit_vec(Lowering::insn(isa::OP_V_ADD, 0,
                             {{isa::f_V_ADD::a, lw.addr(a)},
                              {isa::f_V_ADD::b, lw.addr(b)},
                              {isa::f_V_ADD::y, lw.addr(y)},
                              {isa::f_V_ADD::count, lw.u32(y.numel(), "count")}}),
              {a, b}, {y});
}

class ResidualLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    const auto br = branches(lw, layer);
    const TensorRef yb = lw.forward_sequence(*br[0], x);
    const TensorRef ys = br[1]->empty() ? x : lw.forward_sequence(*br[1], x);
    const int64_t count = lw.batch() * sat::numel(layer.out_shape);
    check(lw, "body output", yb, count);
    check(lw, br[1]->empty() ? "identity shortcut (the input)" : "shortcut output", ys, count);
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation,
                                 dram_shape(lw.batch(), layer.out_shape));
    add(lw, yb, ys, y);
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    const auto br = branches(lw, layer);
    check(lw, "output gradient", dy, lw.batch() * sat::numel(layer.out_shape));
    const TensorRef db = lw.backward_sequence(*br[0], dy, need_dx);
    const TensorRef ds = br[1]->empty() ? dy : lw.backward_sequence(*br[1], dy, need_dx);
    if (!need_dx) return {};
    const int64_t count = lw.batch() * sat::numel(layer.in_shape);
    check(lw, "body's input gradient", db, count);
    check(lw, "shortcut's input gradient", ds, count);
    // Apart from both addends' channels: the add then reads two channels and writes a third.
    const TensorRef dx = lw.alloc_gradient_apart(layer.name + ".dx", dram_shape(lw.batch(), layer.in_shape), {db, ds});
    add(lw, db, ds, dx);
    return dx;
  }

 private:
  static std::vector<std::vector<LayerPtr>*> branches(Lowering& lw, Layer& layer) {
    auto br = layer.branches();
    if (br.size() != 2 || !br[0] || !br[1]) {
      lw.fail("expected two branches (body, shortcut), got " + std::to_string(br.size()));
    }
    if (br[0]->empty()) lw.fail("the body is empty");
    return br;
  }
};

}  // namespace

std::unique_ptr<LayerLowering> make_residual_lowering() {
  return std::make_unique<ResidualLowering>();
}

}  // namespace sat::compiler
