// Lowering of `batchnorm2d` (host/src/layers/batchnorm.cpp). The activation is NHWC, so the
// normalisation runs over rows = batch * H * W of C channels each:
//   FF: one V_BN. In training (flag b0) it computes the batch statistics, saves mean and rstd (FP32,
//       per channel) for BP and moves the running statistics (PyTorch's momentum, unbiased
//       variance); in inference it normalises with the running statistics.
//   BP: one V_BN_BWD writing dx (BF16) and overwriting the FP32 gradients of gamma and beta.
#include <memory>
#include <vector>

#include "compiler/lower_norm.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class BatchNormLowering final : public NormLowering {
 public:
  BatchNormLowering() : NormLowering(isa::OP_V_BN_BWD, "c") {}

  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    if (layer.in_shape.size() != 3) {
      lw.fail("expected a [C, H, W] input, got " + shape_str(layer.in_shape));
    }
    width_ = layer.in_shape[0];
    rows_ = lw.batch() * layer.in_shape[1] * layer.in_shape[2];
    if (x.dtype != DType::bf16 || x.numel() != rows_ * width_) {
      lw.fail("expected a BF16 NHWC input of " + std::to_string(rows_ * width_) +
              " elements, got " + std::to_string(x.numel()));
    }
    if (lw.training() && rows_ < 2) {
      lw.fail("training needs more than one value per channel (batch * H * W = " +
              std::to_string(rows_) + ")");
    }
    // The saved statistics are written in training only; they are allocated in inference too so
    // that every address field of the instruction points into a region.
    const TensorRef y = begin_forward(lw, layer, x, width_);
    const TensorRef rm = lw.param_ref(need_param(lw, layer, ".running_mean"));
    const TensorRef rv = lw.param_ref(need_param(lw, layer, ".running_var"));
    const nlohmann::json attrs = layer.attrs();
    const float eps = static_cast<float>(attrs.value("eps", 1e-5));
    const float momentum = static_cast<float>(attrs.value("momentum", 0.1));
    const TensorRef g = lw.param_ref(gamma_), b = lw.param_ref(beta_);
    const bool train = lw.training();
    // A following ReLU runs here (b1): relu(y) and its bit mask, a bit an element, for BP (V_BN_BWD b0).
    relu_fused_ = lw.fuse_next_relu();
    std::vector<TensorRef> writes = {y};
    if (relu_fused_) {
      mask_ = lw.alloc(layer.name + ".relu_mask", RegionKind::activation, {(rows_ * width_ + 15) / 16});
      writes.push_back(mask_);
    }
    if (train) writes.insert(writes.end(), {mean_, rstd_, rm, rv});
    isa::Insn in = Lowering::insn(isa::OP_V_BN, static_cast<uint8_t>((train ? 1 : 0) | (relu_fused_ ? 2 : 0)),
                               {{isa::f_V_BN::x, lw.addr(x)},
                                {isa::f_V_BN::y, lw.addr(y)},
                                {isa::f_V_BN::gamma, lw.addr(g)},
                                {isa::f_V_BN::beta, lw.addr(b)},
                                {isa::f_V_BN::mean, lw.addr(mean_)},
                                {isa::f_V_BN::rstd, lw.addr(rstd_)},
                                {isa::f_V_BN::run_mean, lw.addr(rm)},
                                {isa::f_V_BN::run_var, lw.addr(rv)},
                                {isa::f_V_BN::rows, lw.u32(rows_, "rows")},
                                {isa::f_V_BN::c, lw.u32(width_, "c")},
                                {isa::f_V_BN::eps, Lowering::f32(eps)},
                                {isa::f_V_BN::momentum, Lowering::f32(momentum)}});
    if (relu_fused_) in.w[isa::f_V_BN::mask] = lw.addr(mask_);
    lw.emit_vec(in, {x, g, b, rm, rv}, writes);
    return y;
  }

  bool fused_relu() const override { return relu_fused_; }
};

}  // namespace

std::unique_ptr<LayerLowering> make_batchnorm2d_lowering() {
  return std::make_unique<BatchNormLowering>();
}

}  // namespace sat::compiler
