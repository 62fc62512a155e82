// Pooling over [channels, height, width]: windowed max and average (PyTorch's MaxPool2d and
// AvgPool2d with ceil_mode=False), and the global average that ends a CNN.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "cpu/simd.hpp"
#include "layers/common.hpp"
#include "layers/layers.hpp"
#include "sat/error.hpp"

namespace sat::layers {

namespace {

// Window geometry shared by max and average pooling.
class Pool2d : public Layer {
 public:
  Pool2d(int64_t kernel, int64_t stride, int64_t padding) : k_(kernel), s_(stride), p_(padding) {}
  nlohmann::json attrs() const override { return {{"kernel", k_}, {"stride", s_}, {"padding", p_}}; }

  Shape build(const Shape& in, Rng&) override {
    std::tie(oh_, ow_) = window_output(*this, in, k_, s_, p_);
    c_ = in[0];
    h_ = in[1];
    w_ = in[2];
    return {c_, oh_, ow_};
  }

  void describe(std::vector<LayerInfo>& out, Method) const override {
    // In double: a kernel from a model file may be near 2^40 (its padding of k / 2 lets it fit).
    const double k = static_cast<double>(k_), flops = static_cast<double>(c_ * oh_ * ow_) * k * k;
    out.push_back(layer_info(*this, flops, flops));
  }

 protected:
  // The rows [lo, hi) of the input that window `o` covers along one axis of size `n`, padding
  // clipped off (padding never wins a max and adds zero to a sum).
  std::pair<int64_t, int64_t> span(int64_t o, int64_t n) const {
    return {std::max<int64_t>(o * s_ - p_, 0), std::min(o * s_ - p_ + k_, n)};
  }
  void check_input(const Tensor& x) const {
    if (x.rank() != 4 || Shape(x.shape().begin() + 1, x.shape().end()) != in_shape) {
      bad_input(*this, "[batch, " + shape_str(in_shape).substr(1), x.shape());
    }
  }
  void check_grad(const Tensor& dy, int64_t batch) const {
    const Shape want = {batch, c_, oh_, ow_};
    if (dy.shape() != want) bad_input(*this, "gradient " + shape_str(want), dy.shape());
  }

  int64_t k_, s_, p_;
  int64_t c_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;
};

// Strictly greater keeps the first maximum on ties; a NaN wins so that divergence propagates.
inline bool beats(float val, float best) {
  return (val > best) | (std::isnan(val) & !std::isnan(best));
}

class MaxPool2d final : public Pool2d {
 public:
  using Pool2d::Pool2d;
  std::string type() const override { return "maxpool2d"; }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    check_input(x);
    const int64_t planes = x.dim(0) * c_, ohw = oh_ * ow_;
    if (ctx.training) argmax_.resize(static_cast<size_t>(planes * ohw));
    cached_batch_ = ctx.training ? x.dim(0) : 0;
    if (k_ == 2 && s_ == 2 && p_ == 0 && x.dtype() == DType::bf16) {
      // LeNet's and VGG's case, on the BF16 bits (a max of BF16 numbers is one of them): no
      // conversion of the input, no window bounds, selects instead of branches.
      Tensor y = Tensor::uninitialized({x.dim(0), c_, oh_, ow_}, DType::bf16);
      const bf16* in = x.bf16_data();
      bf16* out = y.bf16_data();
      int32_t* am = ctx.training ? argmax_.data() : nullptr;
      constexpr int64_t kPlanes = 16;   // planes per kernel call
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; pl += kPlanes)
        cpu::simd::maxpool2x2_forward_bf16(in + pl * h_ * w_, std::min(kPlanes, planes - pl), h_,
                                           w_, out + pl * ohw, am ? am + pl * ohw : nullptr);
      return y;
    }
    const std::vector<float> v = x.to_f32();
    std::vector<float> y(static_cast<size_t>(planes * ohw));
    if (k_ == 2 && s_ == 2 && p_ == 0) {
      forward_2x2(v.data(), planes, y.data(), ctx.training ? argmax_.data() : nullptr);
      return Tensor::from_f32({x.dim(0), c_, oh_, ow_}, y.data());
    }
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* in = v.data() + pl * h_ * w_;
      for (int64_t oy = 0; oy < oh_; ++oy) {
        const auto [y0, y1] = span(oy, h_);
        for (int64_t ox = 0; ox < ow_; ++ox) {
          const auto [x0, x1] = span(ox, w_);
          // Padding acts as -inf, so only the real elements of the window compete (the padding
          // limit guarantees one).
          int64_t best_i = y0 * w_ + x0;
          float best = in[best_i];
          for (int64_t iy = y0; iy < y1; ++iy) {
            for (int64_t ix = x0; ix < x1; ++ix) {
              const float val = in[iy * w_ + ix];
              if (beats(val, best)) {
                best = val;
                best_i = iy * w_ + ix;
              }
            }
          }
          y[pl * ohw + oy * ow_ + ox] = best;
          if (ctx.training) argmax_[pl * ohw + oy * ow_ + ox] = static_cast<int32_t>(best_i);
        }
      }
    }
    return Tensor::from_f32({x.dim(0), c_, oh_, ow_}, y.data());
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    if (cached_batch_ == 0) {
      throw Error(name + " (maxpool2d): backward needs a forward in training mode first");
    }
    check_grad(dy, cached_batch_);
    const int64_t planes = cached_batch_ * c_, ohw = oh_ * ow_;
    if (k_ == 2 && s_ == 2 && p_ == 0 && dy.dtype() == DType::bf16) {
      // The windows do not overlap: each input gets its window's gradient or zero, written once.
      Tensor dx = Tensor::uninitialized({cached_batch_, c_, h_, w_}, DType::bf16);
      const bf16* g = dy.bf16_data();
      bf16* out = dx.bf16_data();
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl)
        cpu::simd::maxpool2x2_backward_bf16(g + pl * ohw, argmax_.data() + pl * ohw, 1, h_, w_,
                                            out + pl * h_ * w_);
      return dx;
    }
    const std::vector<float> g = dy.to_f32();
    std::vector<float> dx(static_cast<size_t>(planes * h_ * w_), 0.0f);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      float* out = dx.data() + pl * h_ * w_;
      for (int64_t i = 0; i < ohw; ++i) out[argmax_[pl * ohw + i]] += g[pl * ohw + i];
    }
    return Tensor::from_f32({cached_batch_, c_, h_, w_}, dx.data());
  }

 private:
  // The 2x2 / stride 2 / no padding case of LeNet and VGG: no window bounds, and selects instead of
  // branches (on real data the winner of a window is unpredictable).
  void forward_2x2(const float* v, int64_t planes, float* y, int32_t* argmax) const {
    const int64_t ohw = oh_ * ow_;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* in = v + pl * h_ * w_;
      for (int64_t oy = 0; oy < oh_; ++oy) {
        const float* r0 = in + 2 * oy * w_;
        const float* r1 = r0 + w_;
        float* out = y + pl * ohw + oy * ow_;
        int32_t* am = argmax ? argmax + pl * ohw + oy * ow_ : nullptr;
        for (int64_t ox = 0; ox < ow_; ++ox) {
          const int64_t c = 2 * ox;
          float best = r0[c];
          int32_t bi = static_cast<int32_t>(2 * oy * w_ + c);
          const float cand[3] = {r0[c + 1], r1[c], r1[c + 1]};
          const int32_t ci[3] = {bi + 1, bi + static_cast<int32_t>(w_), bi + static_cast<int32_t>(w_) + 1};
          for (int j = 0; j < 3; ++j) {
            const bool b = beats(cand[j], best);
            best = b ? cand[j] : best;
            bi = b ? ci[j] : bi;
          }
          out[ox] = best;
          if (am) am[ox] = bi;
        }
      }
    }
  }

  std::vector<int32_t> argmax_;          // per output: the winning index within its input plane
  int64_t cached_batch_ = 0;             // batch of the last training forward; 0: none
};

class AvgPool2d final : public Pool2d {
 public:
  using Pool2d::Pool2d;
  std::string type() const override { return "avgpool2d"; }

  // Padding counts as zeros in the divisor (PyTorch's count_include_pad=True): every window
  // divides by k*k.
  Tensor forward(const Tensor& x, const StepContext&) override {
    check_input(x);
    const int64_t planes = x.dim(0) * c_, ohw = oh_ * ow_;
    const std::vector<float> v = x.to_f32();
    std::vector<float> y(static_cast<size_t>(planes * ohw));
    const float scale = 1.0f / static_cast<float>(k_ * k_);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* in = v.data() + pl * h_ * w_;
      for (int64_t oy = 0; oy < oh_; ++oy) {
        const auto [y0, y1] = span(oy, h_);
        for (int64_t ox = 0; ox < ow_; ++ox) {
          const auto [x0, x1] = span(ox, w_);
          float sum = 0;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) sum += in[iy * w_ + ix];
          y[pl * ohw + oy * ow_ + ox] = sum * scale;
        }
      }
    }
    return Tensor::from_f32({x.dim(0), c_, oh_, ow_}, y.data());
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    if (dy.rank() != 4) bad_input(*this, "gradient [batch, channels, height, width]", dy.shape());
    const int64_t batch = dy.dim(0);
    check_grad(dy, batch);
    const int64_t planes = batch * c_, ohw = oh_ * ow_;
    const std::vector<float> g = dy.to_f32();
    std::vector<float> dx(static_cast<size_t>(planes * h_ * w_), 0.0f);
    const float scale = 1.0f / static_cast<float>(k_ * k_);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      float* out = dx.data() + pl * h_ * w_;
      for (int64_t oy = 0; oy < oh_; ++oy) {
        const auto [y0, y1] = span(oy, h_);
        for (int64_t ox = 0; ox < ow_; ++ox) {
          const auto [x0, x1] = span(ox, w_);
          const float gi = g[pl * ohw + oy * ow_ + ox] * scale;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) out[iy * w_ + ix] += gi;
        }
      }
    }
    return Tensor::from_f32({batch, c_, h_, w_}, dx.data());
  }
};

class GlobalAvgPool final : public Layer {
 public:
  std::string type() const override { return "global_avgpool"; }

  Shape build(const Shape& in, Rng&) override {
    if (in.size() != 3) bad_input(*this, "[channels, height, width]", in);
    c_ = in[0];
    hw_ = in[1] * in[2];
    return {c_};
  }

  Tensor forward(const Tensor& x, const StepContext&) override {
    if (x.rank() != 4 || Shape(x.shape().begin() + 1, x.shape().end()) != in_shape) {
      bad_input(*this, "[batch, " + shape_str(in_shape).substr(1), x.shape());
    }
    const int64_t planes = x.dim(0) * c_;
    const std::vector<float> v = x.to_f32();
    std::vector<float> y(static_cast<size_t>(planes));
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      double sum = 0;
      for (int64_t i = 0; i < hw_; ++i) sum += v[pl * hw_ + i];
      y[pl] = static_cast<float>(sum / static_cast<double>(hw_));
    }
    return Tensor::from_f32({x.dim(0), c_}, y.data());
  }

  Tensor backward(const Tensor& dy, const StepContext&) override {
    if (dy.rank() != 2 || dy.dim(1) != c_) bad_input(*this, "gradient [batch, channels]", dy.shape());
    const int64_t planes = dy.numel();
    const std::vector<float> g = dy.to_f32();
    std::vector<float> dx(static_cast<size_t>(planes * hw_));
    const float scale = 1.0f / static_cast<float>(hw_);
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      std::fill_n(dx.data() + pl * hw_, hw_, g[pl] * scale);
    }
    Shape s = in_shape;
    s.insert(s.begin(), dy.dim(0));
    return Tensor::from_f32(s, dx.data());
  }

  void describe(std::vector<LayerInfo>& out, Method) const override {
    const double n = static_cast<double>(c_ * hw_);
    out.push_back(layer_info(*this, n, n));
  }

 private:
  int64_t c_ = 0, hw_ = 0;
};

struct PoolFields {
  int64_t kernel, stride, padding;
};

PoolFields pool_fields(const LayerSpec& spec) {
  spec.allow_only({"kernel", "stride", "padding"});
  PoolFields f;
  f.kernel = spec.get_int("kernel");
  f.stride = spec.get_int("stride", f.kernel);
  f.padding = spec.get_int("padding", 0);
  if (f.kernel < 1) spec.fail("\"kernel\" must be >= 1");
  if (f.stride < 1) spec.fail("\"stride\" must be >= 1");
  // PyTorch's limit; it also guarantees that every window holds at least one real element.
  if (f.padding < 0 || f.padding > f.kernel / 2) {
    spec.fail("\"padding\" must be between 0 and kernel / 2 = " + std::to_string(f.kernel / 2));
  }
  return f;
}

}  // namespace

LayerPtr make_maxpool2d(const LayerSpec& spec) {
  const PoolFields f = pool_fields(spec);
  return std::make_unique<MaxPool2d>(f.kernel, f.stride, f.padding);
}

LayerPtr make_avgpool2d(const LayerSpec& spec) {
  const PoolFields f = pool_fields(spec);
  return std::make_unique<AvgPool2d>(f.kernel, f.stride, f.padding);
}

LayerPtr make_global_avgpool(const LayerSpec& spec) {
  spec.allow_only({});
  return std::make_unique<GlobalAvgPool>();
}

}  // namespace sat::layers
