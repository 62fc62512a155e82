#pragma once
// Pooling on NHWC activations, shared by lower_maxpool2d.cpp, lower_avgpool2d.cpp and
// lower_global_avgpool.cpp: V_POOL forward, V_POOL_BWD backward (max recomputes each window's first
// maximum from the saved input; average divides by kh*kw, padding included, as the CPU layer does).
// The global average is one window of the whole image.
#include "compiler/lower_common.hpp"

namespace sat::compiler {

class PoolLowering final : public LayerLowering {
 public:
  enum class Kind { max, avg, global };
  explicit PoolLowering(Kind k) : kind_(k) {}

  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    if (kind_ == Kind::global) {
      if (layer.in_shape.size() != 3) lw.fail("expected a [C, H, W] input, got " + shape_str(layer.in_shape));
      g_.c = layer.in_shape[0];
      g_.h = layer.in_shape[1];
      g_.w = layer.in_shape[2];
      if (g_.h > 0xffff || g_.w > 0xffff) lw.fail("the image must be under 65536 pixels a side");
      g_.kh = g_.h;
      g_.kw = g_.w;
      g_.stride = 1;
      g_.pad = 0;
      g_.oh = g_.ow = 1;
    } else {
      g_ = window_geom(lw, layer, attr_int(lw, layer, "kernel"), attr_int(lw, layer, "stride"),
                       attr_int(lw, layer, "padding"));
    }
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation,
                                 dram_shape(lw.batch(), layer.out_shape));
    lw.emit_vec(Lowering::insn(isa::OP_V_POOL, kind_ == Kind::max ? 0 : 1,
                               {{isa::f_V_POOL::x, lw.addr(x)},
                                {isa::f_V_POOL::y, lw.addr(y)},
                                {isa::f_V_POOL::b, lw.u32(lw.batch(), "b")},
                                {isa::f_V_POOL::c, lw.u32(g_.c, "c")},
                                {isa::f_V_POOL::h, lw.u32(g_.h, "h")},
                                {isa::f_V_POOL::w, lw.u32(g_.w, "w")},
                                {isa::f_V_POOL::kh_kw, isa::pack16(lw.u32(g_.kh, "kh"), lw.u32(g_.kw, "kw"))},
                                {isa::f_V_POOL::stride_pad,
                                 isa::pack16(lw.u32(g_.stride, "stride"), lw.u32(g_.pad, "pad"))},
                                {isa::f_V_POOL::oh, lw.u32(g_.oh, "oh")},
                                {isa::f_V_POOL::ow, lw.u32(g_.ow, "ow")}}),
                {x}, {y});
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!need_dx) return {};
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, x_.shape);
    const std::vector<TensorRef> reads =
        kind_ == Kind::max ? std::vector<TensorRef>{x_, dy} : std::vector<TensorRef>{dy};
    lw.emit_vec(Lowering::insn(isa::OP_V_POOL_BWD, kind_ == Kind::max ? 0 : 1,
                               {{isa::f_V_POOL_BWD::x, lw.addr(x_)},
                                {isa::f_V_POOL_BWD::dy, lw.addr(dy)},
                                {isa::f_V_POOL_BWD::dx, lw.addr(dx)},
                                {isa::f_V_POOL_BWD::b, lw.u32(lw.batch(), "b")},
                                {isa::f_V_POOL_BWD::c, lw.u32(g_.c, "c")},
                                {isa::f_V_POOL_BWD::h, lw.u32(g_.h, "h")},
                                {isa::f_V_POOL_BWD::w, lw.u32(g_.w, "w")},
                                {isa::f_V_POOL_BWD::kh_kw,
                                 isa::pack16(lw.u32(g_.kh, "kh"), lw.u32(g_.kw, "kw"))},
                                {isa::f_V_POOL_BWD::stride_pad,
                                 isa::pack16(lw.u32(g_.stride, "stride"), lw.u32(g_.pad, "pad"))},
                                {isa::f_V_POOL_BWD::oh, lw.u32(g_.oh, "oh")},
                                {isa::f_V_POOL_BWD::ow, lw.u32(g_.ow, "ow")}}),
                reads, {dx});
    return dx;
  }

 private:
  Kind kind_;
  ConvGeom g_;
  TensorRef x_;
};


}  // namespace sat::compiler
