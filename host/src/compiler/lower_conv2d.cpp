// conv2d over NHWC activations as an implicit-im2col product (P = B*OH*OW rows, K = Cin*kh*kw in
// (cin, ky, kx) order, the CPU's W[Cout][K]).
//   FF: A = im2col(X) fetched by LD_CONV, B = W_F / W; bias added by the store.
//   BP: stride 1, square kernel: dX = conv(dY, W flipped), dY's windows tap-major (LD_CONV b2)
//       against W_B's lines of each input channel, dX stored directly. Otherwise dcol[P][K] = dY W,
//       scattered back by ST_COL2IM into an FP32 NHWC scratch (zeroed first) and rounded to BF16
//       by V_CONVERT; a 1x1, stride-1, unpadded convolution stores dX directly.
//   WU: dW = dY^T im2col(X) (A = dY read transposed, B = the transposed im2col); db = column sums.
#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class Conv2dLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    g_ = window_geom(lw, layer, attr_int(lw, layer, "kernel"), attr_int(lw, layer, "stride"),
                     attr_int(lw, layer, "padding"));
    cout_ = attr_int(lw, layer, "out");
    bias_ = lw.param(layer, ".bias");
    std::vector<SparseWeight*> ws;
    layer.sparse_weights(ws);
    if (ws.size() != 1) lw.fail("has no weight parameter");
    sw_ = ws[0];
    if (sw_->k != g_.c * g_.kh * g_.kw || sw_->cout != cout_) {
      lw.fail("weight shape [" + std::to_string(sw_->cout) + ", " + std::to_string(sw_->k) +
              "] does not match the convolution's geometry");
    }
    p_ = static_cast<int64_t>(lw.batch()) * g_.oh * g_.ow;
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation,
                                 dram_shape(lw.batch(), layer.out_shape));
    lw.ff_product(sw_, Operand::conv_rows(x, g_), p_, bias_output(lw, y, bias_, cout_));
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (bias_) bias_grad(lw, bias_, dy, p_, cout_);
    lw.wu_product(sw_, Operand::rows(dy, 1, cout_), Operand::conv_cols(x_, g_), p_);
    if (!need_dx) return {};
    const Shape xs = dram_shape(lw.batch(), layer.in_shape);
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, xs);
    const bool direct = g_.kh == 1 && g_.kw == 1 && g_.stride == 1 && g_.pad == 0;
    if (direct) {
      lw.bp_product(sw_, Operand::rows(dy, cout_), p_, Output::rows(dx, g_.c));
      return dx;
    }
    if (lw.bp_as_convolution(sw_, g_)) {
      // dX = conv(dY, W flipped): dY [B][oh][ow][cout] through a kh x kw window padded kh-1-pad,
      // whose outputs are dX's h x w positions (stride 1).
      ConvGeom gb;
      gb.c = cout_;
      gb.h = g_.oh;
      gb.w = g_.ow;
      gb.kh = g_.kh;
      gb.kw = g_.kw;
      gb.stride = 1;
      gb.pad = g_.kh - 1 - g_.pad;
      gb.oh = g_.h;
      gb.ow = g_.w;
      const int64_t p_in = static_cast<int64_t>(lw.batch()) * g_.h * g_.w;
      lw.bp_conv_product(sw_, Operand::conv_bp(dy, gb), p_in, g_.kh * g_.kw, Output::rows(dx, g_.c));
      return dx;
    }
    const TensorRef acc = lw.alloc(layer.name + ".dx_f32", RegionKind::gradient, xs, DType::f32);
    zero_f32(lw, acc);
    lw.bp_product(sw_, Operand::rows(dy, cout_), p_, Output::col2im(acc, g_));
    convert_to_bf16(lw, acc, dx);
    return dx;
  }

 private:
  ConvGeom g_;
  int64_t cout_ = 0, p_ = 0;
  Param* bias_ = nullptr;
  SparseWeight* sw_ = nullptr;
  TensorRef x_;
};

}  // namespace

std::unique_ptr<LayerLowering> make_conv2d_lowering() { return std::make_unique<Conv2dLowering>(); }

}  // namespace sat::compiler
