// Linear: y = x W^T + b over the last dimension; any leading dimensions (tokens) are folded into
// the batch. W[out][in] carries the layer's N:M sparsity.
#include <nlohmann/json.hpp>

#include "sat/cpu_kernels.hpp"
#include "cpu/weight_ops.hpp"
#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

class Linear final : public Layer {
 public:
  Linear(int64_t out, bool bias, NM nm) : out_(out), has_bias_(bias), nm_(nm) {}
  std::string type() const override { return "linear"; }
  nlohmann::json attrs() const override { return {{"out", out_}, {"in", in_}, {"bias", has_bias_}}; }

  Shape build(const Shape& in, Rng& rng) override {
    if (in.empty()) bad_input(*this, "[..., features]", in);
    in_ = in.back();
    weight_ = Param(name + ".weight", {out_, in_});
    init_weight(weight_, in_, rng);
    if (has_bias_) {
      bias_ = Param(name + ".bias", {out_}, true, false);
      init_bias(bias_, in_, rng);
    }
    setup_sparse(sw_, weight_, out_, in_, nm_);
    Shape out = in;
    out.back() = out_;
    return out;
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    const int64_t rows = x.numel() / in_;
    std::vector<float> xf = x.to_f32();
    xt_.resize(xf.size());
    cpu::transpose(xf.data(), rows, in_, xt_.data());           // [in][rows]
    std::vector<float> yt(static_cast<size_t>(out_ * rows));
    cpu::ff_product(sw_, ctx, xt_.data(), rows, yt.data());
    std::vector<float> y(yt.size());
    cpu::transpose(yt.data(), out_, rows, y.data());            // [rows][out]
    if (has_bias_) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < out_; ++o) y[r * out_ + o] += bias_.value[o];
    }
    if (!ctx.training) xt_.clear();
    Shape s = x.shape();
    s.back() = out_;
    return Tensor::from_f32(s, y);
  }

  Tensor backward(const Tensor& dy, const StepContext& ctx) override {
    const int64_t rows = dy.numel() / out_;
    std::vector<float> g = dy.to_f32();
    if (has_bias_) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < out_; ++o) bias_.grad[o] += g[r * out_ + o];
    }
    std::vector<float> gt(g.size());
    cpu::transpose(g.data(), rows, out_, gt.data());            // [out][rows]
    cpu::wu_product(sw_, ctx, gt.data(), xt_.data(), rows);
    if (!ctx.input_grad) return Tensor();
    std::vector<float> dxt(static_cast<size_t>(in_ * rows));
    cpu::bp_product(sw_, ctx, gt.data(), rows, dxt.data());
    std::vector<float> dx(dxt.size());
    cpu::transpose(dxt.data(), in_, rows, dx.data());
    Shape s = dy.shape();
    s.back() = in_;
    return Tensor::from_f32(s, dx);
  }

  void params(std::vector<Param*>& out) override {
    out.push_back(&weight_);
    if (has_bias_) out.push_back(&bias_);
  }
  void sparse_weights(std::vector<SparseWeight*>& out) override { out.push_back(&sw_); }

  bool skips_input_grad() const override { return true; }

  void describe(std::vector<LayerInfo>& out, Method method) const override {
    const double rows = static_cast<double>(sat::numel(in_shape) / in_);
    out.push_back(weight_layer_info(*this, sw_, method, rows, has_bias_ ? out_ : 0));
  }


 private:
  int64_t out_, in_ = 0;
  bool has_bias_;
  NM nm_;
  Param weight_, bias_;
  SparseWeight sw_;
  std::vector<float> xt_;                                        // cached input, [in][rows]
};

}  // namespace

LayerPtr make_linear(const LayerSpec& spec) {
  spec.allow_only({"out", "bias", "nm"});
  const int64_t out = spec.get_int("out");
  if (out < 1) spec.fail("\"out\" must be >= 1");
  return std::make_unique<Linear>(out, spec.get_bool("bias", true), spec.nm());
}

}  // namespace sat::layers
