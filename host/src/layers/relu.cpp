// ReLU: y = max(x, 0). Backward passes dy where the cached input was positive.
#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

class ReLU final : public Layer {
 public:
  std::string type() const override { return "relu"; }
  Shape build(const Shape& in, Rng&) override { return in; }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    std::vector<float> v = x.to_f32();
    if (ctx.training) positive_.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const bool pos = v[i] > 0.0f;
      if (!pos) v[i] = 0.0f;
      if (ctx.training) positive_[i] = pos;
    }
    return Tensor::from_f32(x.shape(), v);   // exact: values already representable
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    std::vector<float> g = dy.to_f32();
    for (size_t i = 0; i < g.size(); ++i) if (!positive_[i]) g[i] = 0.0f;
    return Tensor::from_f32(dy.shape(), g);
  }

  void describe(std::vector<LayerInfo>& out, Method) const override {
    LayerInfo info{name, type(), in_shape, out_shape};
    info.flops_ff = info.flops_bp = static_cast<double>(sat::numel(in_shape));
    info.sparsity = "-";
    out.push_back(info);
  }

 private:
  std::vector<uint8_t> positive_;
};

class Flatten final : public Layer {
 public:
  std::string type() const override { return "flatten"; }
  Shape build(const Shape& in, Rng&) override { return {sat::numel(in)}; }
  Tensor forward(const Tensor& x, const StepContext&) override {
    return x.reshaped({x.dim(0), x.numel() / x.dim(0)});
  }
  Tensor backward(const Tensor& dy, const StepContext&) override {
    Shape s = in_shape;
    s.insert(s.begin(), dy.dim(0));
    return dy.reshaped(s);
  }
  void describe(std::vector<LayerInfo>& out, Method) const override {
    LayerInfo info{name, type(), in_shape, out_shape};
    info.sparsity = "-";
    out.push_back(info);
  }
};

}  // namespace

LayerPtr make_relu(const LayerSpec& spec) {
  spec.allow_only({});
  return std::make_unique<ReLU>();
}

LayerPtr make_flatten(const LayerSpec& spec) {
  spec.allow_only({});
  return std::make_unique<Flatten>();
}

}  // namespace sat::layers
