// linear: Y[P][out] = X[P][in] W^T + b over the last dimension (leading dimensions are rows P).
//   FF: A = X rows, B = W_F / W; bias added by the store.
//   BP: dX = dY W (B = W_B / masked W_F / W as [in][out] lines).
//   WU: dW = dY^T X (A = dY read transposed, B = X read transposed); db = column sums of dY.
#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class LinearLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    in_ = attr_int(lw, layer, "in");
    out_ = attr_int(lw, layer, "out");
    weight_ = lw.param(layer, ".weight");
    bias_ = lw.param(layer, ".bias");
    sw_ = find_weight(lw, layer);
    if (!weight_ || !sw_) lw.fail("has no weight parameter");
    rows_ = x.numel() / in_;
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation,
                                 dram_shape(lw.batch(), layer.out_shape));
    lw.ff_product(sw_, Operand::rows(x, in_), rows_, bias_output(lw, y, bias_, out_));
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (bias_) bias_grad(lw, bias_, dy, rows_, out_);
    // WU: A(r = o, k = p) = dY[p][o]; B(r = i, k = p) = X[p][i].
    lw.wu_product(sw_, Operand::rows(dy, 1, out_), Operand::rows(x_, 1, in_), rows_);
    if (!need_dx) return {};
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient,
                                  dram_shape(lw.batch(), layer.in_shape));
    lw.bp_product(sw_, Operand::rows(dy, out_), rows_, Output::rows(dx, in_));
    return dx;
  }

 private:
  static SparseWeight* find_weight(Lowering& lw, Layer& layer) {
    std::vector<SparseWeight*> ws;
    layer.sparse_weights(ws);
    (void)lw;
    return ws.size() == 1 ? ws[0] : nullptr;
  }

  int64_t in_ = 0, out_ = 0, rows_ = 0;
  Param* weight_ = nullptr;
  Param* bias_ = nullptr;
  SparseWeight* sw_ = nullptr;
  TensorRef x_;
};

}  // namespace

std::unique_ptr<LayerLowering> make_linear_lowering() { return std::make_unique<LinearLowering>(); }

}  // namespace sat::compiler
