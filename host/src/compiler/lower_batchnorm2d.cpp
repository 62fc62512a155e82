// Lowering of `batchnorm2d` (host/src/layers/batchnorm.cpp). The activation is NHWC, so the
// normalisation runs over rows = batch * H * W of C channels each:
//   FF: one V_BN. In training (flag b0) it computes the batch statistics, saves mean and rstd (FP32,
//       per channel) for BP and moves the running statistics (PyTorch's momentum, unbiased
//       variance); in inference it normalises with the running statistics.
//   BP: one V_BN_BWD writing dx (BF16) and overwriting the FP32 gradients of gamma and beta.
#include <memory>
#include <vector>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

Param* need_param(Lowering& lw, Layer& layer, const char* suffix) {
  Param* p = lw.param(layer, suffix);
  if (!p) lw.fail(std::string("has no parameter '") + suffix + "'");
  return p;
}

class BatchNormLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    if (layer.in_shape.size() != 3) {
      lw.fail("expected a [C, H, W] input, got " + shape_str(layer.in_shape));
    }
    c_ = layer.in_shape[0];
    rows_ = lw.batch() * layer.in_shape[1] * layer.in_shape[2];
    if (x.dtype != DType::bf16 || x.numel() != rows_ * c_) {
      lw.fail("expected a BF16 NHWC input of " + std::to_string(rows_ * c_) + " elements, got " +
              std::to_string(x.numel()));
    }
    if (lw.training() && rows_ < 2) {
      lw.fail("training needs more than one value per channel (batch * H * W = " +
              std::to_string(rows_) + ")");
    }
    gamma_ = need_param(lw, layer, ".weight");
    beta_ = need_param(lw, layer, ".bias");
    const TensorRef rm = lw.param_ref(need_param(lw, layer, ".running_mean"));
    const TensorRef rv = lw.param_ref(need_param(lw, layer, ".running_var"));
    const nlohmann::json attrs = layer.attrs();
    const float eps = static_cast<float>(attrs.value("eps", 1e-5));
    const float momentum = static_cast<float>(attrs.value("momentum", 0.1));

    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, x.shape);
    // The saved statistics are written in training only; they are allocated in inference too so
    // that every address field of the instruction points into a region.
    mean_ = lw.alloc(layer.name + ".mean", RegionKind::stats, {c_}, DType::f32);
    rstd_ = lw.alloc(layer.name + ".rstd", RegionKind::stats, {c_}, DType::f32);
    const TensorRef g = lw.param_ref(gamma_), b = lw.param_ref(beta_);
    const bool train = lw.training();
    std::vector<TensorRef> writes = {y};
    if (train) writes.insert(writes.end(), {mean_, rstd_, rm, rv});
    lw.emit_vec(Lowering::insn(isa::OP_V_BN, train ? 1 : 0,
                               {{isa::f_V_BN::x, lw.addr(x)},
                                {isa::f_V_BN::y, lw.addr(y)},
                                {isa::f_V_BN::gamma, lw.addr(g)},
                                {isa::f_V_BN::beta, lw.addr(b)},
                                {isa::f_V_BN::mean, lw.addr(mean_)},
                                {isa::f_V_BN::rstd, lw.addr(rstd_)},
                                {isa::f_V_BN::run_mean, lw.addr(rm)},
                                {isa::f_V_BN::run_var, lw.addr(rv)},
                                {isa::f_V_BN::rows, lw.u32(rows_, "rows")},
                                {isa::f_V_BN::c, lw.u32(c_, "c")},
                                {isa::f_V_BN::eps, Lowering::f32(eps)},
                                {isa::f_V_BN::momentum, Lowering::f32(momentum)}}),
                {x, g, b, rm, rv}, writes);
    return y;
  }

  // dL/dgamma and dL/dbeta are always written (the update reads them); the same instruction writes
  // dx, into a scratch region when the caller does not want it.
  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    if (dy.dtype != DType::bf16 || dy.numel() != x_.numel()) {
      lw.fail("expected a BF16 output gradient of " + std::to_string(x_.numel()) +
              " elements, got " + std::to_string(dy.numel()));
    }
    const TensorRef dx = lw.alloc(layer.name + (need_dx ? ".dx" : ".dx_unused"),
                                  RegionKind::gradient, x_.shape);
    const TensorRef g = lw.param_ref(gamma_);
    const TensorRef dg = lw.grad_ref(gamma_), db = lw.grad_ref(beta_);
    if (lw.region_written(dg.region) || lw.region_written(db.region)) {
      lw.fail("gamma/beta gradients written twice in one step (V_BN_BWD overwrites them)");
    }
    lw.emit_vec(Lowering::insn(isa::OP_V_BN_BWD, 0,
                               {{isa::f_V_BN_BWD::x, lw.addr(x_)},
                                {isa::f_V_BN_BWD::dy, lw.addr(dy)},
                                {isa::f_V_BN_BWD::dx, lw.addr(dx)},
                                {isa::f_V_BN_BWD::gamma, lw.addr(g)},
                                {isa::f_V_BN_BWD::dgamma, lw.addr(dg)},
                                {isa::f_V_BN_BWD::dbeta, lw.addr(db)},
                                {isa::f_V_BN_BWD::mean, lw.addr(mean_)},
                                {isa::f_V_BN_BWD::rstd, lw.addr(rstd_)},
                                {isa::f_V_BN_BWD::rows, lw.u32(rows_, "rows")},
                                {isa::f_V_BN_BWD::c, lw.u32(c_, "c")}}),
                {x_, dy, g, mean_, rstd_}, {dx, dg, db});
    return need_dx ? dx : TensorRef{};
  }

 private:
  TensorRef x_, mean_, rstd_;
  Param* gamma_ = nullptr;
  Param* beta_ = nullptr;
  int64_t c_ = 0, rows_ = 0;
};

}  // namespace

std::unique_ptr<LayerLowering> make_batchnorm2d_lowering() {
  return std::make_unique<BatchNormLowering>();
}

}  // namespace sat::compiler
