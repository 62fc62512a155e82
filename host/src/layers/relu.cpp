// ReLU: y = max(x, 0). Backward passes dy where the cached input was positive.
#include <algorithm>
#include <cmath>

#include "cpu/simd.hpp"

#include "layers/common.hpp"
#include "sat/error.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

// Elements per call of the element-wise kernels (cpu/simd.cpp), the unit split over the threads.
constexpr int64_t kChunk = 1 << 15;

class ReLU final : public Layer {
 public:
  std::string type() const override { return "relu"; }
  Shape build(const Shape& in, Rng&) override { return in; }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    const int64_t n = x.numel();
    positive_.resize(ctx.training ? static_cast<size_t>(n) : 0);
    uint8_t* pos = ctx.training ? positive_.data() : nullptr;   // an empty vector may keep its memory
    if (x.dtype() == DType::bf16) {
      // On the BF16 bits directly: positive means sign clear and not zero (a NaN passes, as in
      // PyTorch). Saves two conversions of the largest activations of a CNN.
      Tensor y = Tensor::uninitialized(x.shape(), DType::bf16);   // every element written below
      const bf16* in = x.bf16_data();
      bf16* out = y.bf16_data();
#pragma omp parallel for schedule(static) if (n > 4 * kChunk)
      for (int64_t i = 0; i < n; i += kChunk)
        cpu::simd::relu_forward_bf16(in + i, out + i, pos ? pos + i : nullptr, std::min(kChunk, n - i));
      return y;
    }
    std::vector<float> v = x.to_f32();
    for (int64_t i = 0; i < n; ++i) {
      if (!(v[i] > 0.0f) && !std::isnan(v[i])) v[i] = 0.0f;
    }
    if (pos) {
      for (int64_t i = 0; i < n; ++i) pos[i] = v[i] != 0.0f;
    }
    return Tensor::from_f32(x.shape(), v);
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    const int64_t n = dy.numel();
    if (static_cast<int64_t>(positive_.size()) != n) {
      throw Error(name + " (relu): backward without a training forward of the same shape");
    }
    const uint8_t* pos = positive_.data();
    if (dy.dtype() == DType::bf16) {
      Tensor dx = Tensor::uninitialized(dy.shape(), DType::bf16);
      const bf16* g = dy.bf16_data();
      bf16* out = dx.bf16_data();
#pragma omp parallel for schedule(static) if (n > 4 * kChunk)
      for (int64_t i = 0; i < n; i += kChunk)
        cpu::simd::relu_backward_bf16(g + i, pos + i, out + i, std::min(kChunk, n - i));
      return dx;
    }
    std::vector<float> g = dy.to_f32();
    for (int64_t i = 0; i < n; ++i) {
      if (!pos[i]) g[i] = 0.0f;
    }
    return Tensor::from_f32(dy.shape(), g);
  }

  void describe(std::vector<LayerInfo>& out, Method) const override {
    const double n = static_cast<double>(sat::numel(in_shape));
    out.push_back(layer_info(*this, n, n));
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
    out.push_back(layer_info(*this, 0, 0));
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
