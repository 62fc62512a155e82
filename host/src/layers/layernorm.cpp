// LayerNorm over the last dimension: y = gamma * (x - mean) / sqrt(var + eps) + beta, with the
// biased variance (PyTorch's). Leading dimensions (tokens) are independent rows.
#include <algorithm>
#include <cmath>

#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

class LayerNorm final : public Layer {
 public:
  explicit LayerNorm(double eps) : eps_(eps) {}
  std::string type() const override { return "layernorm"; }
  nlohmann::json attrs() const override { return {{"eps", eps_}}; }

  Shape build(const Shape& in, Rng&) override {
    if (in.empty()) bad_input(*this, "[..., features]", in);
    d_ = in.back();
    gamma_ = Param(name + ".weight", {d_}, true, false);
    beta_ = Param(name + ".bias", {d_}, true, false);
    std::fill(gamma_.value.begin(), gamma_.value.end(), 1.0f);
    return in;
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    const int64_t rows = x.numel() / d_;
    std::vector<float> v = x.to_f32();
    std::vector<float> xhat(v.size()), rstd(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      float* row = &v[r * d_];
      double sum = 0;
      for (int64_t i = 0; i < d_; ++i) sum += row[i];
      const double mean = sum / static_cast<double>(d_);
      double sq = 0;
      for (int64_t i = 0; i < d_; ++i) sq += (row[i] - mean) * (row[i] - mean);
      const double rs = 1.0 / std::sqrt(sq / static_cast<double>(d_) + eps_);
      rstd[r] = static_cast<float>(rs);
      for (int64_t i = 0; i < d_; ++i) {
        const float h = static_cast<float>((row[i] - mean) * rs);
        xhat[r * d_ + i] = h;
        row[i] = gamma_.value[i] * h + beta_.value[i];
      }
    }
    if (ctx.training) {
      xhat_ = std::move(xhat);
      rstd_ = std::move(rstd);
    }
    return Tensor::from_f32(x.shape(), v);
  }

  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
  Tensor backward(const Tensor& dy, const StepContext&) override {
    const int64_t rows = dy.numel() / d_;
    std::vector<float> g = dy.to_f32();
    std::vector<double> dgamma(static_cast<size_t>(d_)), dbeta(static_cast<size_t>(d_));
    for (int64_t r = 0; r < rows; ++r) {
      float* row = &g[r * d_];
      const float* h = &xhat_[r * d_];
      double sum_g = 0, sum_gh = 0;
      for (int64_t i = 0; i < d_; ++i) {
        dgamma[i] += static_cast<double>(row[i]) * h[i];
        dbeta[i] += row[i];
        const double gi = static_cast<double>(row[i]) * gamma_.value[i];
        sum_g += gi;
        sum_gh += gi * h[i];
      }
      const double mean_g = sum_g / static_cast<double>(d_);
      const double mean_gh = sum_gh / static_cast<double>(d_);
      for (int64_t i = 0; i < d_; ++i) {
        const double gi = static_cast<double>(row[i]) * gamma_.value[i];
        row[i] = static_cast<float>(rstd_[r] * (gi - mean_g - h[i] * mean_gh));
      }
    }
    for (int64_t i = 0; i < d_; ++i) {
      gamma_.grad[i] += static_cast<float>(dgamma[i]);
      beta_.grad[i] += static_cast<float>(dbeta[i]);
    }
    return Tensor::from_f32(dy.shape(), g);
  }

  void params(std::vector<Param*>& out) override {
    out.push_back(&gamma_);
    out.push_back(&beta_);
  }

  // Per element: FF mean, variance (3), normalise (2), affine (2); BP the gamma scaling, two
  // reductions (3) and the combination (4); WU dgamma (2) and dbeta (1).
  void describe(std::vector<LayerInfo>& out, Method) const override {
    const double n = static_cast<double>(sat::numel(in_shape));
    out.push_back(layer_info(*this, 8 * n, 8 * n, 3 * n, 2 * d_));
  }

 private:
  double eps_;
  int64_t d_ = 0;
  Param gamma_, beta_;
  std::vector<float> xhat_, rstd_;                               // cached per element / per row
};

}  // namespace

LayerPtr make_layernorm(const LayerSpec& spec) {
  spec.allow_only({"eps"});
  const double eps = spec.get_double("eps", 1e-5);
  if (!(eps > 0)) spec.fail("\"eps\" must be > 0");
  return std::make_unique<LayerNorm>(eps);
}

}  // namespace sat::layers
