#pragma once
// Finite-difference gradient checks for layers, run in exact FP32 numerics (NumericsScope):
// the loss is L = sum(y * r) for a fixed random r, so dL/dy = r. Central differences in double
// are compared with the layer's backward for dx and every trainable parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "sat/layer.hpp"
#include "sat/model.hpp"
#include "sat/tensor.hpp"

namespace sat::test {

// Builds one layer from its JSON description for per-sample input shape `in`.
inline LayerPtr build_layer(const std::string& json_text, const Shape& in, NM model_nm = {1, 1},
                            uint64_t seed = 11) {
  const nlohmann::json j = nlohmann::json::parse(json_text);
  LayerPtr l = make_layer(LayerSpec{j, "test", "layers[0]", model_nm});
  l->name = "t";
  Rng rng(seed);
  l->in_shape = in;
  l->out_shape = l->build(in, rng);
  return l;
}

struct GradCheckOptions {
  Method method = Method::dense;
  double eps = 1e-3;
  double tol = 2e-3;          // on |num - ana| / max(1, |num|, |ana|)
  int max_checks = 64;        // sampled entries per tensor
  uint64_t seed = 7;
};

inline double loss_of(Layer& layer, const Tensor& x, const std::vector<float>& r, Method method) {
  StepContext ctx{method, true};
  const std::vector<float> y = layer.forward(x, ctx).to_f32();
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * r[i];
  return s;
}

// `layer` must be built already; x is [batch, ...in_shape].
inline void grad_check(Layer& layer, const Shape& x_shape, const GradCheckOptions& o = {}) {
  NumericsScope exact(Numerics::fp32);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> nd;
  std::vector<float> xv(static_cast<size_t>(numel(x_shape)));
  for (auto& v : xv) v = nd(rng);
  Tensor x = Tensor::from_f32(x_shape, xv);

  std::vector<Param*> params;
  layer.params(params);
  std::vector<SparseWeight*> sws;
  layer.sparse_weights(sws);
  auto regen = [&] { for (auto* s : sws) s->regenerate(o.method); };
  regen();

  StepContext ctx{o.method, true};
  const Tensor y = layer.forward(x, ctx);
  std::vector<float> r(static_cast<size_t>(y.numel()));
  for (auto& v : r) v = nd(rng);
  for (Param* p : params) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  const std::vector<float> dx = layer.backward(Tensor::from_f32(y.shape(), r), ctx).to_f32();
  ASSERT_EQ(dx.size(), xv.size()) << layer.name << ": dx has the wrong size";

  auto check = [&](const std::string& what, size_t n, auto&& get, auto&& set, auto&& analytic) {
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    const int count = static_cast<int>(std::min<size_t>(n, static_cast<size_t>(o.max_checks)));
    for (int c = 0; c < count; ++c) {
      const size_t i = n <= static_cast<size_t>(o.max_checks) ? static_cast<size_t>(c) : pick(rng);
      const float orig = get(i);
      set(i, orig + static_cast<float>(o.eps));
      const double lp = loss_of(layer, x, r, o.method);
      set(i, orig - static_cast<float>(o.eps));
      const double lm = loss_of(layer, x, r, o.method);
      set(i, orig);
      const double num = (lp - lm) / (2 * o.eps);
      const double ana = analytic(i);
      const double err = std::fabs(num - ana) / std::max({1.0, std::fabs(num), std::fabs(ana)});
      EXPECT_LT(err, o.tol) << layer.name << " (" << layer.type() << "): d/d" << what << "[" << i
                            << "]: numeric " << num << " vs analytic " << ana;
    }
  };

  check("x", xv.size(), [&](size_t i) { return xv[i]; },
        [&](size_t i, float v) { xv[i] = v; x = Tensor::from_f32(x_shape, xv); },
        [&](size_t i) { return static_cast<double>(dx[i]); });
  for (Param* p : params) {
    if (!p->trainable) continue;
    const std::vector<float> g = p->grad;
    check(p->name, p->value.size(), [&](size_t i) { return p->value[i]; },
          [&](size_t i, float v) { p->value[i] = v; regen(); },
          [&](size_t i) { return static_cast<double>(g[i]); });
  }
}

}  // namespace sat::test
