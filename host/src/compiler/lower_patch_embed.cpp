// Lowering of `patch_embed` (host/src/layers/patch_embed.cpp): the convolution with kernel = stride =
// patch over the NHWC image. Its output positions p = b * T + t are exactly the [B][T][dim] tokens
// (patches in row-major order) and its im2col column order (c, ky, kx) is the weight's K order.
//   FF: Y = im2col(X) W_F^T + bias, rounded to BF16 by the store (weight product, bias from the
//       FP32 bias region); then one V_BCAST_ADD adds pos_embed [T][dim], read as one FP32 row of
//       T * dim broadcast over the B samples.
//   BP: dbias = column sums of dY over the B * T tokens (V_COLSUM);
//       dpos  = column sums of dY read as [B][T * dim] (V_COLSUM);
//       dW    = dY^T im2col(X) (the WU product; B operand the transposed im2col);
//       dX only when wanted (the layer is first in every model, where it is not): the BP product
//       scattered back by col2im into a zeroed FP32 image (patches do not overlap, so each pixel
//       receives one value), then V_CONVERT to BF16; with 1x1 patches the product is dX itself.
#include <memory>
#include <vector>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class PatchEmbedLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    const int64_t patch = attr_int(lw, layer, "patch");
    dim_ = attr_int(lw, layer, "dim");
    const Shape& in = layer.in_shape;
    if (patch < 1 || dim_ < 1) {
      lw.fail("\"patch\" and \"dim\" must be >= 1, got " + std::to_string(patch) + " and " +
              std::to_string(dim_));
    }
    if (in.size() != 3 || in[1] % patch != 0 || in[2] % patch != 0) {
      lw.fail("expected a [C, H, W] input with H and W divisible by the patch (" +
              std::to_string(patch) + "), got " + shape_str(in));
    }
    if (patch > 0xffff) {
      lw.fail("patch " + std::to_string(patch) + " exceeds the 16-bit window fields");
    }
    geom_.c = in[0];
    geom_.h = in[1];
    geom_.w = in[2];
    geom_.kh = geom_.kw = geom_.stride = patch;
    geom_.pad = 0;
    geom_.oh = in[1] / patch;
    geom_.ow = in[2] / patch;
    t_ = geom_.oh * geom_.ow;
    const int64_t b = lw.batch();
    if (x.dtype != DType::bf16 || x.numel() != b * sat::numel(in)) {
      lw.fail("expected a BF16 NHWC input of " + std::to_string(b * sat::numel(in)) +
              " elements, got " + std::to_string(x.numel()));
    }
    std::vector<SparseWeight*> sw;
    layer.sparse_weights(sw);
    if (sw.size() != 1 || !sw[0]) {
      lw.fail("expected one N:M weight, the layer has " + std::to_string(sw.size()));
    }
    w_ = sw[0];
    const int64_t k = geom_.c * patch * patch;
    if (w_->cout != dim_ || w_->k != k) {
      lw.fail("the weight is [" + std::to_string(w_->cout) + "][" + std::to_string(w_->k) +
              "], expected [" + std::to_string(dim_) + "][" + std::to_string(k) + "]");
    }
    bias_ = need_param(lw, layer, ".bias");
    pos_ = need_param(lw, layer, ".pos_embed");
    if (pos_->numel() != t_ * dim_) {
      lw.fail("pos_embed has " + std::to_string(pos_->numel()) + " values, expected " +
              std::to_string(t_ * dim_) + " (tokens x dim)");
    }

    x_ = x;
    const int64_t p = b * t_;
    const TensorRef proj = lw.alloc(layer.name + ".proj", RegionKind::activation, {b, t_, dim_});
    lw.ff_product(w_, Operand::conv_rows(x, geom_), p, bias_output(lw, proj, bias_, dim_));

    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, {b, t_, dim_});
    const TensorRef pos = lw.param_ref(pos_);
    lw.emit_vec(Lowering::insn(isa::OP_V_BCAST_ADD, 0,
                               {{isa::f_V_BCAST_ADD::x, lw.addr(proj)},
                                {isa::f_V_BCAST_ADD::p, lw.addr(pos)},
                                {isa::f_V_BCAST_ADD::y, lw.addr(y)},
                                {isa::f_V_BCAST_ADD::rows, lw.u32(b, "rows")},
                                {isa::f_V_BCAST_ADD::cols, lw.u32(t_ * dim_, "cols")}}),
                {proj, pos}, {y});
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    const int64_t b = lw.batch(), p = b * t_;
    check_dy(lw, dy, p * dim_, "[batch, tokens, dim] ");
    // Bias and position-embedding gradients: column sums of dY.
    bias_grad(lw, bias_, dy, p, dim_);
    bias_grad(lw, pos_, dy, b, t_ * dim_);
    // Weight gradient: dW[dim][K] = dY^T im2col(X); A(r = o, k = p) = dY[p][o].
    lw.wu_product(w_, Operand::rows(dy, 1, dim_), Operand::conv_cols(x_, geom_), p);
    if (!need_dx) return {};

    const Shape img = dram_shape(b, layer.in_shape);
    if (geom_.kh == 1) {   // 1x1 patches: the tokens are the pixels, dX is the product itself
      const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, img);
      lw.bp_product(w_, Operand::rows(dy, dim_), p, Output::rows(dx, geom_.c));
      return dx;
    }
    const TensorRef acc = lw.alloc(layer.name + ".dx_acc", RegionKind::gradient, img, DType::f32);
    zero_f32(lw, acc);
    lw.bp_product(w_, Operand::rows(dy, dim_), p, Output::col2im(acc, geom_));
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, img);
    convert_to_bf16(lw, acc, dx);
    return dx;
  }

 private:
  TensorRef x_;
  ConvGeom geom_;
  SparseWeight* w_ = nullptr;
  Param* bias_ = nullptr;
  Param* pos_ = nullptr;
  int64_t dim_ = 0, t_ = 0;
};

}  // namespace

std::unique_ptr<LayerLowering> make_patch_embed_lowering() {
  return std::make_unique<PatchEmbedLowering>();
}

}  // namespace sat::compiler
