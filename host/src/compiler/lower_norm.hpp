#pragma once
// The part of the normalisation lowerings (lower_batchnorm2d.cpp, lower_layernorm.cpp) that is the
// same for both:
//   FF: gamma (".weight") and beta (".bias"), the output like x and the FP32 mean and rstd that
//       the FF instruction (V_BN / V_LN, emitted by the layer) saves for BP;
//   BP: one V_BN_BWD / V_LN_BWD writing dx (BF16) and overwriting the FP32 gradients of gamma and
//       beta.
#include <string>

#include "compiler/lower_common.hpp"

namespace sat::compiler {

// V_BN_BWD and V_LN_BWD have one field layout (V_BN_BWD's `c` is V_LN_BWD's `d`), so that one
// emission serves both.
constexpr bool norm_bwd_layouts_match() {
  namespace bn = isa::f_V_BN_BWD;
  namespace ln = isa::f_V_LN_BWD;
  return int{bn::x} == int{ln::x} && int{bn::dy} == int{ln::dy} && int{bn::dx} == int{ln::dx} &&
         int{bn::gamma} == int{ln::gamma} && int{bn::dgamma} == int{ln::dgamma} &&
         int{bn::dbeta} == int{ln::dbeta} && int{bn::mean} == int{ln::mean} &&
         int{bn::rstd} == int{ln::rstd} && int{bn::rows} == int{ln::rows} &&
         int{bn::c} == int{ln::d};   // V_BN_BWD has one more: `mask` (a ReLU fused into V_BN)
}
static_assert(norm_bwd_layouts_match(), "V_BN_BWD and V_LN_BWD field layouts differ");

// A normalisation over `rows_` rows of `width_` values (channels, features); the layer sets rows_,
// width_ and emits its FF instruction between begin_forward() and returning the output.
class NormLowering : public LayerLowering {
 public:
  // dL/dgamma and dL/dbeta are always written (the update reads them); the same instruction writes
  // dx, into a scratch region when the caller does not want it.
  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) final {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    check_dy(lw, dy, x_.numel());
    const TensorRef dx = lw.alloc(layer.name + (need_dx ? ".dx" : ".dx_unused"),
                                  RegionKind::gradient, x_.shape);
    const TensorRef g = lw.param_ref(gamma_);
    const TensorRef dg = lw.grad_ref(gamma_), db = lw.grad_ref(beta_);
    if (lw.region_written(dg.region) || lw.region_written(db.region)) {
      lw.fail(std::string("gamma/beta gradients written twice in one step (") +
              isa::opcode_name(bwd_op_) + " overwrites them)");
    }
    namespace f = isa::f_V_BN_BWD;
    isa::Insn in = Lowering::insn(bwd_op_, relu_fused_ ? 1 : 0,
                               {{f::x, lw.addr(x_)},
                                {f::dy, lw.addr(dy)},
                                {f::dx, lw.addr(dx)},
                                {f::gamma, lw.addr(g)},
                                {f::dgamma, lw.addr(dg)},
                                {f::dbeta, lw.addr(db)},
                                {f::mean, lw.addr(mean_)},
                                {f::rstd, lw.addr(rstd_)},
                                {f::rows, lw.u32(rows_, "rows")},
                                {f::c, lw.u32(width_, width_name_)}});
    std::vector<TensorRef> reads = {x_, dy, g, mean_, rstd_};
    if (relu_fused_) {   // dy of the fused ReLU's output, masked by its bits
      in.w[f::mask] = lw.addr(mask_);
      reads.push_back(mask_);
    }
    lw.emit_vec(in, reads, {dx, dg, db});
    return need_dx ? dx : TensorRef{};
  }

 protected:
  // bwd_op: V_BN_BWD or V_LN_BWD; width_name: its width field's name ("c", "d") for errors.
  NormLowering(isa::Opcode bwd_op, const char* width_name)
      : bwd_op_(bwd_op), width_name_(width_name) {}

  // Looks up gamma and beta, keeps x for BP and allocates the output (like x) and the FP32 mean
  // and rstd of `stats` values each; returns the output.
  TensorRef begin_forward(Lowering& lw, Layer& layer, const TensorRef& x, int64_t stats) {
    gamma_ = need_param(lw, layer, ".weight");
    beta_ = need_param(lw, layer, ".bias");
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, x.shape);
    mean_ = lw.alloc(layer.name + ".mean", RegionKind::stats, {stats}, DType::f32);
    rstd_ = lw.alloc(layer.name + ".rstd", RegionKind::stats, {stats}, DType::f32);
    return y;
  }

  TensorRef x_, mean_, rstd_;
  TensorRef mask_;            // the fused ReLU's bit mask
  bool relu_fused_ = false;   // a following ReLU runs in this layer's FF (V_BN b1) and BP (V_BN_BWD b0)
  Param* gamma_ = nullptr;
  Param* beta_ = nullptr;
  int64_t rows_ = 0, width_ = 0;

 private:
  isa::Opcode bwd_op_;
  const char* width_name_;
};

}  // namespace sat::compiler
