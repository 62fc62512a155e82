// Lowering of `token_mean` (host/src/layers/token_mean.cpp): [B][T][D] -> [B][D], the mean over the
// tokens. [B][T][D] read as an NHWC image of height T, width 1 and D channels, this is one average
// pooling with a T x 1 window and one output position per sample:
//   FF: V_POOL average,     y[b][d]     = sum_t x[b][t][d] / T
//   BP: V_POOL_BWD average, dx[b][t][d] = dy[b][d] / T (the window covers every token exactly once,
//       so every element of dx is written).
#include <memory>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class TokenMeanLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    if (layer.in_shape.size() != 2) {
      lw.fail("expected a [tokens, features] input, got " + shape_str(layer.in_shape));
    }
    t_ = layer.in_shape[0];
    d_ = layer.in_shape[1];
    if (t_ > 0xffff) {
      lw.fail(std::to_string(t_) + " tokens exceed the 16-bit pooling window field (65535)");
    }
    const int64_t b = lw.batch();
    if (x.dtype != DType::bf16 || x.numel() != b * t_ * d_) {
      lw.fail("expected a BF16 [batch, tokens, features] input of " + std::to_string(b * t_ * d_) +
              " elements, got " + std::to_string(x.numel()));
    }
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, {b, d_});
    lw.emit_vec(Lowering::insn(isa::OP_V_POOL, 1,
                               {{isa::f_V_POOL::x, lw.addr(x)},
                                {isa::f_V_POOL::y, lw.addr(y)},
                                {isa::f_V_POOL::b, lw.u32(b, "b")},
                                {isa::f_V_POOL::c, lw.u32(d_, "c")},
                                {isa::f_V_POOL::h, lw.u32(t_, "h")},
                                {isa::f_V_POOL::w, 1},
                                {isa::f_V_POOL::kh_kw, window()},
                                {isa::f_V_POOL::stride_pad, stride_pad()},
                                {isa::f_V_POOL::oh, 1},
                                {isa::f_V_POOL::ow, 1}}),
                {x}, {y});
    return y;
  }

  // No parameters: without need_dx there is nothing to compute.
  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    if (!need_dx) return {};
    const int64_t b = lw.batch();
    check_dy(lw, dy, b * d_, "[batch, features] ");
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, x_.shape);
    // The average's backward does not read x (the field is set for the format's sake).
    lw.emit_vec(Lowering::insn(isa::OP_V_POOL_BWD, 1,
                               {{isa::f_V_POOL_BWD::x, lw.addr(x_)},
                                {isa::f_V_POOL_BWD::dy, lw.addr(dy)},
                                {isa::f_V_POOL_BWD::dx, lw.addr(dx)},
                                {isa::f_V_POOL_BWD::b, lw.u32(b, "b")},
                                {isa::f_V_POOL_BWD::c, lw.u32(d_, "c")},
                                {isa::f_V_POOL_BWD::h, lw.u32(t_, "h")},
                                {isa::f_V_POOL_BWD::w, 1},
                                {isa::f_V_POOL_BWD::kh_kw, window()},
                                {isa::f_V_POOL_BWD::stride_pad, stride_pad()},
                                {isa::f_V_POOL_BWD::oh, 1},
                                {isa::f_V_POOL_BWD::ow, 1}}),
                {dy}, {dx});
    return dx;
  }

 private:
  uint32_t window() const { return isa::pack16(static_cast<uint32_t>(t_), 1); }       // T x 1
  uint32_t stride_pad() const { return isa::pack16(1, 0); }   // one window: any stride

  TensorRef x_;
  int64_t t_ = 0, d_ = 0;
};

}  // namespace

std::unique_ptr<LayerLowering> make_token_mean_lowering() {
  return std::make_unique<TokenMeanLowering>();
}

}  // namespace sat::compiler
