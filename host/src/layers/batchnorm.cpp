// BatchNorm2d over [channels, height, width], PyTorch semantics: training normalises with the
// batch statistics (biased variance) and moves the running statistics towards them (unbiased
// variance); inference normalises with the running statistics. Statistics in double.
#include <algorithm>
#include <cmath>

#include "layers/common.hpp"
#include "layers/layers.hpp"
#include "sat/error.hpp"

namespace sat::layers {

namespace {

class BatchNorm2d final : public Layer {
 public:
  BatchNorm2d(double eps, double momentum) : eps_(eps), momentum_(momentum) {}
  std::string type() const override { return "batchnorm2d"; }
  nlohmann::json attrs() const override { return {{"eps", eps_}, {"momentum", momentum_}}; }

  Shape build(const Shape& in, Rng&) override {
    if (in.size() != 3) bad_input(*this, "[channels, height, width]", in);
    c_ = in[0];
    hw_ = in[1] * in[2];
    gamma_ = Param(name + ".weight", {c_}, true, false);
    beta_ = Param(name + ".bias", {c_}, true, false);
    running_mean_ = Param(name + ".running_mean", {c_}, false, false);
    running_var_ = Param(name + ".running_var", {c_}, false, false);
    std::fill(gamma_.value.begin(), gamma_.value.end(), 1.0f);
    std::fill(running_var_.value.begin(), running_var_.value.end(), 1.0f);
    return in;
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    if (x.rank() != 4 || Shape(x.shape().begin() + 1, x.shape().end()) != in_shape) {
      bad_input(*this, "[batch, " + shape_str(in_shape).substr(1), x.shape());
    }
    const int64_t batch = x.dim(0), count = batch * hw_;
    if (ctx.training && count < 2) {
      bad_input(*this, "with more than one value per channel in training mode", x.shape());
    }
    std::vector<float> v = x.to_f32();
    if (ctx.training) {
      xhat_.resize(v.size());
      invstd_.resize(static_cast<size_t>(c_));
    }
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < c_; ++c) {
      double mean = running_mean_.value[c], var = running_var_.value[c];
      if (ctx.training) {
        double sum = 0;
        for (int64_t b = 0; b < batch; ++b) {
          const float* p = v.data() + (b * c_ + c) * hw_;
          for (int64_t i = 0; i < hw_; ++i) sum += p[i];
        }
        mean = sum / static_cast<double>(count);
        double sq = 0;   // second pass: no cancellation when |mean| >> std
        for (int64_t b = 0; b < batch; ++b) {
          const float* p = v.data() + (b * c_ + c) * hw_;
          for (int64_t i = 0; i < hw_; ++i) sq += (p[i] - mean) * (p[i] - mean);
        }
        var = sq / static_cast<double>(count);
        const double unbiased = sq / static_cast<double>(count - 1);
        running_mean_.value[c] =
            static_cast<float>((1 - momentum_) * running_mean_.value[c] + momentum_ * mean);
        running_var_.value[c] =
            static_cast<float>((1 - momentum_) * running_var_.value[c] + momentum_ * unbiased);
      }
      const double invstd = 1.0 / std::sqrt(var + eps_);
      const double g = gamma_.value[c], beta = beta_.value[c];
      if (ctx.training) invstd_[c] = invstd;
      for (int64_t b = 0; b < batch; ++b) {
        float* p = v.data() + (b * c_ + c) * hw_;
        float* xh = ctx.training ? xhat_.data() + (b * c_ + c) * hw_ : nullptr;
        for (int64_t i = 0; i < hw_; ++i) {
          const double n = (p[i] - mean) * invstd;
          if (xh) xh[i] = static_cast<float>(n);
          p[i] = static_cast<float>(g * n + beta);
        }
      }
    }
    cached_batch_ = ctx.training ? batch : 0;
    return Tensor::from_f32(x.shape(), v.data());
  }

  // With the batch statistics depending on every input:
  //   dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
  Tensor backward(const Tensor& dy, const StepContext&) override {
    if (cached_batch_ == 0) {
      throw Error(name + " (batchnorm2d): backward needs a forward in training mode first");
    }
    Shape want = in_shape;
    want.insert(want.begin(), cached_batch_);
    if (dy.shape() != want) bad_input(*this, "gradient " + shape_str(want), dy.shape());
    const int64_t batch = cached_batch_;
    const double count = static_cast<double>(batch * hw_);
    std::vector<float> g = dy.to_f32();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < c_; ++c) {
      double sum_g = 0, sum_gx = 0;
      for (int64_t b = 0; b < batch; ++b) {
        const float* gp = g.data() + (b * c_ + c) * hw_;
        const float* xh = xhat_.data() + (b * c_ + c) * hw_;
        for (int64_t i = 0; i < hw_; ++i) {
          sum_g += gp[i];
          sum_gx += static_cast<double>(gp[i]) * xh[i];
        }
      }
      gamma_.grad[c] += static_cast<float>(sum_gx);
      beta_.grad[c] += static_cast<float>(sum_g);
      const double scale = gamma_.value[c] * invstd_[c];
      const double mean_g = sum_g / count, mean_gx = sum_gx / count;
      for (int64_t b = 0; b < batch; ++b) {
        float* gp = g.data() + (b * c_ + c) * hw_;
        const float* xh = xhat_.data() + (b * c_ + c) * hw_;
        for (int64_t i = 0; i < hw_; ++i) {
          gp[i] = static_cast<float>(scale * (gp[i] - mean_g - xh[i] * mean_gx));
        }
      }
    }
    return Tensor::from_f32(dy.shape(), g.data());
  }

  void params(std::vector<Param*>& out) override {
    out.push_back(&gamma_);
    out.push_back(&beta_);
    out.push_back(&running_mean_);
    out.push_back(&running_var_);
  }

  // Per element: normalise and scale (FF); two reductions and the input-gradient formula (BP);
  // the two parameter reductions (WU).
  void describe(std::vector<LayerInfo>& out, Method) const override {
    const double n = static_cast<double>(c_ * hw_);
    out.push_back(layer_info(*this, 4 * n, 5 * n, 3 * n, 2 * c_));
  }

 private:
  double eps_, momentum_;
  int64_t c_ = 0, hw_ = 0;
  Param gamma_, beta_, running_mean_, running_var_;
  std::vector<float> xhat_;              // normalised input of the last training forward
  std::vector<double> invstd_;           // per channel, of that forward's batch statistics
  int64_t cached_batch_ = 0;             // batch of the last training forward; 0: none
};

}  // namespace

LayerPtr make_batchnorm2d(const LayerSpec& spec) {
  spec.allow_only({"eps", "momentum"});
  const double eps = spec.get_double("eps", 1e-5);
  const double momentum = spec.get_double("momentum", 0.1);
  if (!(eps > 0)) spec.fail("\"eps\" must be > 0");
  if (!(momentum >= 0 && momentum <= 1)) spec.fail("\"momentum\" must be between 0 and 1");
  return std::make_unique<BatchNorm2d>(eps, momentum);
}

}  // namespace sat::layers
