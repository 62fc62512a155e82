// The transformer/residual family: gelu, layernorm, residual, attention, patch_embed, token_mean.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "gradcheck.hpp"
#include "expect_error.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"

using namespace sat;

using test::build_layer;

namespace {

std::map<std::string, Param*> params_by_name(Layer& l) {
  std::vector<Param*> ps;
  l.params(ps);
  std::map<std::string, Param*> out;
  for (Param* p : ps) out[p->name] = p;
  return out;
}

// Moves every parameter off its initial value (LayerNorm starts at gamma 1, beta 0, where some
// gradient mistakes cancel).
void randomize_params(Layer& l, uint64_t seed) {
  std::vector<Param*> ps;
  l.params(ps);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  for (Param* p : ps)
    for (float& v : p->value) v += nd(rng);
}

void regenerate(Layer& l, Method method) {
  std::vector<SparseWeight*> sws;
  l.sparse_weights(sws);
  for (SparseWeight* sw : sws) sw->regenerate(method);
}

std::vector<float> random_values(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(n));
  for (float& e : v) e = nd(rng);
  return v;
}

using test::expect_error;

// y = x W^T + b for rows of length d, in double. W is [d][d].
std::vector<double> affine(const std::vector<double>& x, const std::vector<float>& w,
                           const std::vector<float>& b, int64_t rows, int64_t d) {
  std::vector<double> y(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < d; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int64_t i = 0; i < d; ++i) s += static_cast<double>(w[o * d + i]) * x[r * d + i];
      y[r * d + o] = s;
    }
  return y;
}

// Naive multi-head self-attention in double, from the projection weights w[4] (q, k, v, out) and
// biases b[4] (empty for none). x is [batch, t, d].
std::vector<double> attention_reference(const std::vector<float>& x, int64_t batch, int64_t t,
                                        int64_t d, int64_t heads,
                                        const std::vector<std::vector<float>>& w,
                                        const std::vector<std::vector<float>>& b) {
  const int64_t rows = batch * t, dh = d / heads;
  const std::vector<double> xd(x.begin(), x.end());
  const auto q = affine(xd, w[0], b[0], rows, d);
  const auto k = affine(xd, w[1], b[1], rows, d);
  const auto v = affine(xd, w[2], b[2], rows, d);
  std::vector<double> o(static_cast<size_t>(rows * d));
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> s(static_cast<size_t>(t));
        double mx = -INFINITY;
        for (int64_t j = 0; j < t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < dh; ++e)
            dot += q[(n * t + i) * d + h * dh + e] * k[(n * t + j) * d + h * dh + e];
          s[j] = dot / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t e = 0; e < dh; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < t; ++j) acc += s[j] / sum * v[(n * t + j) * d + h * dh + e];
          o[(n * t + i) * d + h * dh + e] = acc;
        }
      }
  return affine(o, w[3], b[3], rows, d);
}

const char* const kProj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};

// The attention layer `l` (named "t") evaluated by attention_reference, its weights passed through
// `weight_form` first.
using WeightForm = std::function<std::vector<float>(const Param&)>;

std::vector<double> reference_of(Layer& l, const std::vector<float>& x, int64_t batch,
                                 int64_t heads, const WeightForm& weight_form) {
  auto ps = params_by_name(l);
  std::vector<std::vector<float>> w, b;
  for (const char* p : kProj) {
    w.push_back(weight_form(*ps.at(std::string("t.") + p + ".weight")));
    const auto bias = ps.find(std::string("t.") + p + ".bias");
    b.push_back(bias == ps.end() ? std::vector<float>{} : bias->second->value);
  }
  return attention_reference(x, batch, l.in_shape[0], l.in_shape[1], heads, w, b);
}

}  // namespace

// ---- gradient checks ------------------------------------------------------------------------

TEST(GradCheck, GeluExact) {
  auto l = build_layer(R"({"type": "gelu"})", {5, 8});
  test::grad_check(*l, {3, 5, 8});
}

TEST(GradCheck, GeluTanh) {
  auto l = build_layer(R"({"type": "gelu", "approximate": "tanh"})", {40});
  test::grad_check(*l, {3, 40});
}

TEST(GradCheck, LayerNorm) {
  auto l = build_layer(R"({"type": "layernorm"})", {4, 12});
  randomize_params(*l, 3);
  test::grad_check(*l, {2, 4, 12});
}

TEST(GradCheck, Attention) {
  auto l = build_layer(R"({"type": "attention", "heads": 4})", {5, 16});
  test::grad_check(*l, {2, 5, 16});
}

TEST(GradCheck, AttentionNoBiasOneHead) {
  auto l = build_layer(R"({"type": "attention", "heads": 1, "bias": false})", {3, 8});
  test::grad_check(*l, {2, 3, 8});
}

TEST(GradCheck, PatchEmbed) {
  auto l = build_layer(R"({"type": "patch_embed", "patch": 4, "dim": 8})", {2, 8, 12});
  EXPECT_EQ(l->out_shape, (Shape{6, 8}));
  test::grad_check(*l, {2, 2, 8, 12});
}

TEST(GradCheck, TokenMean) {
  auto l = build_layer(R"({"type": "token_mean"})", {5, 6});
  EXPECT_EQ(l->out_shape, (Shape{6}));
  test::grad_check(*l, {3, 5, 6});
}

TEST(GradCheck, ResidualIdentityShortcut) {
  auto l = build_layer(R"({"type": "residual", "body": [
      {"type": "linear", "out": 12}, {"type": "gelu"}, {"type": "linear", "out": 8}]})", {8});
  test::grad_check(*l, {4, 8});
}

TEST(GradCheck, ResidualLinearShortcut) {
  auto l = build_layer(R"({"type": "residual",
      "body": [{"type": "linear", "out": 12}, {"type": "gelu"}],
      "shortcut": [{"type": "linear", "out": 12, "bias": false}]})", {8});
  EXPECT_EQ(l->out_shape, (Shape{12}));
  test::grad_check(*l, {4, 8});
}

TEST(GradCheck, ResidualPreNormAttentionBlock) {
  auto l = build_layer(R"({"type": "residual", "body": [
      {"type": "layernorm"}, {"type": "attention", "heads": 2}]})", {4, 8});
  test::grad_check(*l, {2, 4, 8});
}

// ---- attention against a naive reference ----------------------------------------------------

TEST(Attention, ForwardMatchesReference) {
  NumericsScope exact(Numerics::fp32);
  const int64_t batch = 2, t = 5, d = 16, heads = 4;
  auto l = build_layer(R"({"type": "attention", "heads": 4})", {t, d});
  regenerate(*l, Method::dense);
  const std::vector<float> x = random_values(batch * t * d, 21);
  const auto y = l->forward(Tensor::from_f32({batch, t, d}, x), {Method::dense, false}).to_f32();
  const auto ref = reference_of(*l, x, batch, heads, [](const Param& p) { return p.value; });
  ASSERT_EQ(y.size(), ref.size());
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_NEAR(y[i], ref[i], 1e-5 * (1 + std::fabs(ref[i]))) << i;
  }
}

// Training numerics: weights and activations rounded to BF16, accumulation in FP32.
TEST(Attention, ForwardBf16NearReference) {
  const int64_t batch = 2, t = 6, d = 16, heads = 2;
  auto l = build_layer(R"({"type": "attention", "heads": 2})", {t, d});
  regenerate(*l, Method::dense);
  const Tensor xt = Tensor::from_f32({batch, t, d}, random_values(batch * t * d, 22));
  ASSERT_EQ(xt.dtype(), DType::bf16);
  const auto y = l->forward(xt, {Method::dense, false}).to_f32();
  const auto ref = reference_of(*l, xt.to_f32(), batch, heads, [](const Param& p) {
    std::vector<float> w = p.value;
    for (float& v : w) v = round_bf16(v);
    return w;
  });
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_NEAR(y[i], ref[i], 1e-2 * std::fabs(ref[i]) + 1e-3) << i;
  }
}

TEST(Attention, BdwpProjectionsUseCompressedWeights) {
  NumericsScope exact(Numerics::fp32);
  const int64_t batch = 2, t = 5, d = 16, heads = 4;
  const NM nm{2, 8};
  auto l = build_layer(R"({"type": "attention", "heads": 4, "nm": "2:8"})", {t, d});
  regenerate(*l, Method::bdwp);
  std::vector<SparseWeight*> sws;
  l->sparse_weights(sws);
  ASSERT_EQ(sws.size(), 4u);
  for (const SparseWeight* sw : sws) {
    EXPECT_EQ(sw->nm, nm);
    EXPECT_TRUE(sw->ff_sparse(Method::bdwp));
    EXPECT_TRUE(sw->bp_sparse(Method::bdwp));
    EXPECT_EQ(sw->fwd.nnz(), d * d * nm.n / nm.m);
    EXPECT_EQ(sw->bwd.nnz(), d * d * nm.n / nm.m);
    EXPECT_TRUE(sw->dense.empty());
  }

  const std::vector<float> x = random_values(batch * t * d, 23);
  const StepContext ctx{Method::bdwp, true};
  const auto y = l->forward(Tensor::from_f32({batch, t, d}, x), ctx).to_f32();
  const auto pruned = reference_of(*l, x, batch, heads, [&](const Param& p) {
    return nm_prune(p.value.data(), d, d, nm, Axis::K);
  });
  const auto dense = reference_of(*l, x, batch, heads, [](const Param& p) { return p.value; });
  double off_dense = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_NEAR(y[i], pruned[i], 1e-5 * (1 + std::fabs(pruned[i]))) << i;
    off_dense = std::max(off_dense, std::fabs(y[i] - dense[i]));
  }
  EXPECT_GT(off_dense, 1e-2) << "the pruned output should differ from the dense one";

  const Tensor dy = Tensor::from_f32({batch, t, d}, random_values(batch * t * d, 24));
  const Tensor dx = l->backward(dy, ctx);
  EXPECT_EQ(dx.shape(), (Shape{batch, t, d}));
  for (float v : dx.to_f32()) ASSERT_TRUE(std::isfinite(v));

  std::vector<LayerInfo> rows;
  l->describe(rows, Method::bdwp);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].sparsity, "2:8 FF+BP");
  EXPECT_DOUBLE_EQ(rows[0].flops_ff, 2.0 * t * 4 * d * d * 2 / 8 + 2.0 * 2 * t * t * d);
  EXPECT_DOUBLE_EQ(rows[0].flops_wu, 2.0 * t * 4 * d * d);
  EXPECT_EQ(rows[0].params, 4 * (d * d + d));
}

// ---- residual container ---------------------------------------------------------------------

TEST(Residual, ChildrenInheritModelNMUnlessOverridden) {
  auto l = build_layer(R"({"type": "residual",
      "body": [{"type": "linear", "out": 16}, {"type": "relu"}],
      "shortcut": [{"type": "linear", "out": 16, "nm": "dense"}]})", {16}, NM{2, 8});
  std::vector<SparseWeight*> sws;
  l->sparse_weights(sws);
  ASSERT_EQ(sws.size(), 2u);
  EXPECT_EQ(sws[0]->nm, (NM{2, 8}));
  EXPECT_TRUE(sws[1]->nm.dense());

  std::vector<LayerInfo> rows;
  l->describe(rows, Method::bdwp);
  ASSERT_EQ(rows.size(), 4u);                    // the add, then body (2), then shortcut (1)
  EXPECT_EQ(rows[0].type, "residual");
  EXPECT_EQ(rows[0].params, 0);
  EXPECT_EQ(rows[1].name, "layers[0].body[0]");
  EXPECT_EQ(rows[3].name, "layers[0].shortcut[0]");
  std::vector<Param*> ps;
  l->params(ps);
  EXPECT_EQ(ps.size(), 4u);                      // weight and bias of each linear
}

TEST(Residual, ForwardIsBodyPlusShortcut) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "residual", "body": [{"type": "relu"}]})", {6});
  const std::vector<float> x = random_values(12, 31);
  const auto y = l->forward(Tensor::from_f32({2, 6}, x), {Method::dense, true}).to_f32();
  for (size_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(y[i], std::max(x[i], 0.0f) + x[i]);
}

// ---- bad input ------------------------------------------------------------------------------

TEST(Transformer, AttentionHeadsMustDivideFeatures) {
  expect_error([] { build_layer(R"({"type": "attention", "heads": 4})", {5, 18}); },
               "divisible by heads (4)");
}

TEST(Transformer, ResidualBranchShapesMustMatch) {
  expect_error([] {
    build_layer(R"({"type": "residual", "body": [{"type": "linear", "out": 8}]})", {16});
  }, "body outputs [8] but the identity shortcut outputs [16]");
  expect_error([] {
    build_layer(R"({"type": "residual", "body": [{"type": "linear", "out": 8}],
                    "shortcut": [{"type": "linear", "out": 4}]})", {16});
  }, "body outputs [8] but shortcut outputs [4]");
}

TEST(Transformer, PatchEmbedNeedsDivisibleImage) {
  expect_error([] { build_layer(R"({"type": "patch_embed", "patch": 4, "dim": 8})", {3, 10, 8}); },
               "divisible by patch (4)");
}

TEST(Transformer, UnknownAndBadFields) {
  expect_error([] { build_layer(R"({"type": "attention", "heads": 2, "head": 2})", {4, 8}); },
               "unknown field \"head\"");
  expect_error([] { build_layer(R"({"type": "layernorm", "epsilon": 1e-6})", {8}); },
               "unknown field \"epsilon\"");
  expect_error([] { build_layer(R"({"type": "gelu", "approximate": "fast"})", {8}); },
               "\"approximate\" must be \"none\" or \"tanh\"");
  expect_error([] { build_layer(R"({"type": "attention"})", {4, 8}); }, "missing field \"heads\"");
  expect_error([] { build_layer(R"({"type": "residual"})", {8}); }, "missing field \"body\"");
  expect_error([] { build_layer(R"({"type": "residual", "body": [{"type": "lin"}]})", {8}); },
               "layers[0].body[0] (lin): unknown layer type 'lin'");
  expect_error([] { build_layer(R"({"type": "token_mean"})", {8}); },
               "expected input [tokens, features]");
}

// ---- a small ViT end to end -----------------------------------------------------------------

TEST(Transformer, TinyVitTrainsUnderBdwp) {
  const std::string text = R"({
    "name": "tiny_vit", "input": [2, 8, 8], "classes": 10, "nm": "2:8",
    "layers": [
      {"type": "patch_embed", "patch": 2, "dim": 16},
      {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 2}]},
      {"type": "residual", "body": [{"type": "layernorm"}, {"type": "linear", "out": 32},
                                    {"type": "gelu"}, {"type": "linear", "out": 16}]},
      {"type": "layernorm"}, {"type": "token_mean"}, {"type": "linear", "out": 10}
    ]})";
  Model m = Model::from_json_text(text, "tiny_vit.json");

  const auto rows = m.describe(Method::bdwp);
  EXPECT_EQ(rows.size(), 12u);
  int64_t counted = 0;
  std::set<std::string> names;
  for (Param* p : m.params()) {
    counted += p->numel();
    EXPECT_TRUE(names.insert(p->name).second) << "duplicate parameter name " << p->name;
  }
  EXPECT_EQ(m.num_params(), counted);
  const auto sws = m.sparse_weights();
  ASSERT_EQ(sws.size(), 8u);                     // patch, 4 projections, 2 MLP, head
  for (size_t i = 0; i + 1 < sws.size(); ++i) EXPECT_EQ(sws[i]->nm, (NM{2, 8})) << i;
  EXPECT_TRUE(sws.back()->nm.dense());           // 10 classes do not divide by 8

  const int64_t batch = 8;
  const Tensor x = Tensor::from_f32({batch, 2, 8, 8}, random_values(batch * 128, 41));
  const std::vector<int> labels = {0, 1, 2, 3, 4, 5, 6, 7};
  const StepContext ctx{Method::bdwp, true};
  m.regenerate(Method::bdwp);
  float first = 0, last = 0;
  for (int step = 0; step < 80; ++step) {
    m.zero_grad();
    Tensor dlogits;
    const Tensor logits = m.forward(x, ctx);
    ASSERT_EQ(logits.shape(), (Shape{batch, 10}));
    const float loss = softmax_cross_entropy(logits, labels, &dlogits, nullptr);
    ASSERT_TRUE(std::isfinite(loss)) << "step " << step;
    m.backward(dlogits, ctx);
    for (Param* p : m.params())
      for (size_t i = 0; i < p->value.size(); ++i) p->value[i] -= 0.1f * p->grad[i];
    m.regenerate(Method::bdwp);
    (step == 0 ? first : last) = loss;
  }
  EXPECT_LT(last, 0.5f * first) << "a fixed batch should be memorised";
}
