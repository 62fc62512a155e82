// GELU: y = x * Phi(x), in PyTorch's exact erf form by default or its tanh approximation
// ("approximate": "tanh"). Backward uses the derivative of the same form, at the cached input.
#include <cmath>

#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

class GELU final : public Layer {
 public:
  explicit GELU(bool tanh_form) : tanh_(tanh_form) {}
  std::string type() const override { return "gelu"; }
  nlohmann::json attrs() const override { return {{"tanh", tanh_}}; }
  Shape build(const Shape& in, Rng&) override { return in; }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    std::vector<float> v = x.to_f32();
    if (ctx.training) x_ = v;
    for (float& e : v) e = static_cast<float>(value(e));
    return Tensor::from_f32(x.shape(), v);
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    std::vector<float> g = dy.to_f32();
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(g[i] * derivative(x_[i]));
    return Tensor::from_f32(dy.shape(), g);
  }

  void describe(std::vector<LayerInfo>& out, Method) const override {
    const double n = static_cast<double>(sat::numel(in_shape));
    out.push_back(layer_info(*this, n, n));
  }

 private:
  static constexpr double kSqrt2 = 1.41421356237309504880;
  static constexpr double kSqrt2OverPi = 0.79788456080286535588;
  static constexpr double kInvSqrt2Pi = 0.39894228040143267794;
  static constexpr double kCubic = 0.044715;

  double value(double x) const {
    if (tanh_) return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x)));
    return 0.5 * x * (1.0 + std::erf(x / kSqrt2));
  }

  double derivative(double x) const {
    if (tanh_) {
      const double t = std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x));
      const double du = kSqrt2OverPi * (1.0 + 3.0 * kCubic * x * x);
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    return 0.5 * (1.0 + std::erf(x / kSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
  }

  bool tanh_;
  std::vector<float> x_;                                         // cached input
};

}  // namespace

LayerPtr make_gelu(const LayerSpec& spec) {
  spec.allow_only({"approximate"});
  const std::string form = spec.get_string("approximate", "none");
  if (form != "none" && form != "tanh") {
    spec.fail("\"approximate\" must be \"none\" or \"tanh\", got \"" + form + "\"");
  }
  return std::make_unique<GELU>(form == "tanh");
}

}  // namespace sat::layers
