// Token mean: [T, D] -> [D], the average over the tokens (the pooling before a ViT's head).
#include <algorithm>

#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

class TokenMean final : public Layer {
 public:
  std::string type() const override { return "token_mean"; }

  Shape build(const Shape& in, Rng&) override {
    if (in.size() != 2) bad_input(*this, "[tokens, features]", in);
    t_ = in[0];
    d_ = in[1];
    return {d_};
  }

  Tensor forward(const Tensor& x, const StepContext&) override {
    const int64_t batch = x.dim(0);
    const std::vector<float> v = x.to_f32();
    std::vector<float> y(static_cast<size_t>(batch * d_));
    std::vector<double> sum(static_cast<size_t>(d_));
    const double tokens = static_cast<double>(t_);
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t t = 0; t < t_; ++t)
        for (int64_t d = 0; d < d_; ++d) sum[d] += v[(b * t_ + t) * d_ + d];
      for (int64_t d = 0; d < d_; ++d) y[b * d_ + d] = static_cast<float>(sum[d] / tokens);
    }
    return Tensor::from_f32({batch, d_}, y);
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    const int64_t batch = dy.dim(0);
    const std::vector<float> g = dy.to_f32();
    std::vector<float> dx(static_cast<size_t>(batch * t_ * d_));
    const float inv = 1.0f / static_cast<float>(t_);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < t_; ++t)
        for (int64_t d = 0; d < d_; ++d) dx[(b * t_ + t) * d_ + d] = g[b * d_ + d] * inv;
    return Tensor::from_f32({batch, t_, d_}, dx);
  }

  void describe(std::vector<LayerInfo>& out, Method) const override {
    const double n = static_cast<double>(sat::numel(in_shape));
    out.push_back(layer_info(*this, n, n));
  }

 private:
  int64_t t_ = 0, d_ = 0;
};

}  // namespace

LayerPtr make_token_mean(const LayerSpec& spec) {
  spec.allow_only({});
  return std::make_unique<TokenMean>();
}

}  // namespace sat::layers
