// BDWP semantics of a weight layer, the SR-STE term and the update rule, against the formulas of
// DESIGN §3 computed directly in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gradcheck.hpp"
#include "random.hpp"
#include "sat/backend.hpp"
#include "sat/error.hpp"
#include "sat/train.hpp"

using namespace sat;

namespace {

using test::randn;

// C[b][o] = sum_k A[b][k] * W[o][k]
std::vector<double> matmul_bt(const std::vector<float>& a, const std::vector<float>& w, int64_t b,
                              int64_t k, int64_t o) {
  std::vector<double> c(static_cast<size_t>(b * o), 0.0);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < o; ++j)
      for (int64_t t = 0; t < k; ++t) c[i * o + j] += static_cast<double>(a[i * k + t]) * w[j * k + t];
  return c;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i]))) << what << " [" << i << "]";
  }
}

struct LinearCase {
  Method method;
  bool ff_pruned, bp_pruned_cout, bp_pruned_k;
};

}  // namespace

class BdwpLinear : public ::testing::TestWithParam<LinearCase> {};

// FF uses W_F (pruned along K), BP uses W_B (pruned along Cout) under bdwp, W_F under srste and W
// under dense; WU is always the dense dY^T X.
TEST_P(BdwpLinear, ProductsReadTheRightWeights) {
  const LinearCase c = GetParam();
  NumericsScope exact(Numerics::fp32);
  const int64_t b = 6, k = 32, o = 16;
  auto layer = test::build_layer(R"({"type": "linear", "out": 16, "bias": false})", {k}, {2, 8});
  std::vector<Param*> ps;
  layer->params(ps);
  std::vector<SparseWeight*> sws;
  layer->sparse_weights(sws);
  ASSERT_EQ(ps.size(), 1u);
  ASSERT_EQ(sws.size(), 1u);
  const std::vector<float> w = ps[0]->value;
  sws[0]->regenerate(c.method);

  const auto x = randn(static_cast<size_t>(b * k), 1), dy = randn(static_cast<size_t>(b * o), 2);
  const StepContext ctx{c.method, true};
  const auto y = layer->forward(Tensor::from_f32({b, k}, x), ctx).to_f32();
  const auto dx = layer->backward(Tensor::from_f32({b, o}, dy), ctx).to_f32();

  const auto w_ff = c.ff_pruned ? nm_prune(w.data(), o, k, {2, 8}, Axis::K) : w;
  const auto w_bp = c.bp_pruned_cout ? nm_prune(w.data(), o, k, {2, 8}, Axis::Cout)
                    : c.bp_pruned_k  ? nm_prune(w.data(), o, k, {2, 8}, Axis::K)
                                     : w;
  expect_close(y, matmul_bt(x, w_ff, b, k, o), 1e-5, "y");
  // dX[b][k] = sum_o dY[b][o] W_bp[o][k]: transpose W_bp to reuse matmul_bt.
  std::vector<float> w_bp_t(static_cast<size_t>(k * o));
  for (int64_t i = 0; i < o; ++i)
    for (int64_t j = 0; j < k; ++j) w_bp_t[j * o + i] = w_bp[i * k + j];
  expect_close(dx, matmul_bt(dy, w_bp_t, b, o, k), 1e-5, "dx");
  std::vector<double> dw(static_cast<size_t>(o * k), 0.0);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t r = 0; r < o; ++r)
      for (int64_t t = 0; t < k; ++t) dw[r * k + t] += static_cast<double>(dy[i * o + r]) * x[i * k + t];
  expect_close(ps[0]->grad, dw, 1e-5, "dW");
}

INSTANTIATE_TEST_SUITE_P(Methods, BdwpLinear,
                         ::testing::Values(LinearCase{Method::dense, false, false, false},
                                           LinearCase{Method::srste, true, false, true},
                                           LinearCase{Method::bdwp, true, true, false}));

TEST(Bdwp, LayerThatDoesNotDivideStaysDense) {
  auto layer = test::build_layer(R"({"type": "linear", "out": 10})", {32}, {2, 8});
  std::vector<LayerInfo> rows;
  layer->describe(rows, Method::bdwp);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0].sparsity.find("Cout 10 % 8 != 0"), std::string::npos) << rows[0].sparsity;
  EXPECT_DOUBLE_EQ(rows[0].flops_ff, 2.0 * 10 * 32);
}

TEST(Bdwp, SummaryFlopsShrinkToNOverM) {
  auto layer = test::build_layer(R"({"type": "linear", "out": 16})", {32}, {2, 8});
  std::vector<LayerInfo> rows;
  layer->describe(rows, Method::bdwp);
  EXPECT_DOUBLE_EQ(rows[0].flops_ff, 2.0 * 16 * 32 / 4);
  EXPECT_DOUBLE_EQ(rows[0].flops_bp, 2.0 * 16 * 32 / 4);
  EXPECT_DOUBLE_EQ(rows[0].flops_wu, 2.0 * 16 * 32);
}

// The update: v = mu v + g + wd w + lambda (1 - mask_F) w; w -= lr v. The SR-STE term lands only on
// the weights W_F prunes, never on kept weights or on biases.
TEST(Bdwp, SrsteTermOnlyOnPrunedWeights) {
  Model m = Model::from_json_text(
      R"({"name": "t", "input": [16], "classes": 8, "nm": "2:8",
          "layers": [{"type": "linear", "out": 8}]})",
      "test");
  Param* w = m.params()[0];
  Param* bias = m.params()[1];
  m.regenerate(Method::bdwp);
  const std::vector<uint8_t> mask = m.sparse_weights()[0]->mask_f;
  const std::vector<float> w0 = w->value, b0 = bias->value;
  for (auto* p : m.params()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  UpdateConfig cfg{Method::bdwp, /*lr=*/0.5, /*momentum=*/0.9, /*weight_decay=*/0.0, /*lambda=*/0.1};
  sgd_update(m, cfg);
  int pruned = 0, kept = 0;
  for (size_t i = 0; i < w0.size(); ++i) {
    if (mask[i]) {
      EXPECT_EQ(w->value[i], w0[i]) << "kept weight " << i << " moved without a gradient";
      ++kept;
    } else {
      EXPECT_FLOAT_EQ(w->value[i], w0[i] - 0.5f * 0.1f * w0[i]) << "pruned weight " << i;
      ++pruned;
    }
  }
  EXPECT_EQ(kept, 8 * 16 / 4);
  EXPECT_EQ(pruned, 8 * 16 * 3 / 4);
  for (size_t i = 0; i < b0.size(); ++i) EXPECT_EQ(bias->value[i], b0[i]);

  // Under dense training there is no SR-STE term at all.
  m.regenerate(Method::dense);
  const std::vector<float> w1 = w->value;
  sgd_update(m, UpdateConfig{Method::dense, 0.5, 0.0, 0.0, 0.1});
  EXPECT_EQ(w->value, w1);
}

TEST(Bdwp, MomentumAndWeightDecay) {
  Model m = Model::from_json_text(
      R"({"name": "t", "input": [4], "classes": 2, "layers": [{"type": "linear", "out": 2}]})", "test");
  Param* w = m.params()[0];
  Param* b = m.params()[1];
  const float w0 = w->value[0], b0 = b->value[0];
  w->grad.assign(w->grad.size(), 1.0f);
  b->grad.assign(b->grad.size(), 1.0f);
  UpdateConfig cfg{Method::dense, 0.1, 0.9, 0.01, 0.0};
  sgd_update(m, cfg);
  const float v1 = 1.0f + 0.01f * w0;
  EXPECT_FLOAT_EQ(w->value[0], w0 - 0.1f * v1);
  EXPECT_FLOAT_EQ(b->value[0], b0 - 0.1f * 1.0f);     // no decay on biases
  const float w1 = w->value[0];
  sgd_update(m, cfg);
  EXPECT_FLOAT_EQ(w->value[0], w1 - 0.1f * (0.9f * v1 + 1.0f + 0.01f * w1));
}

TEST(Schedule, CosineStepConstant) {
  Recipe r;
  r.epochs = 2;
  r.lr = 0.1;
  r.schedule = "cosine";
  EXPECT_DOUBLE_EQ(learning_rate(r, 0, 10), 0.1);
  EXPECT_NEAR(learning_rate(r, 10, 10), 0.05, 1e-12);
  EXPECT_NEAR(learning_rate(r, 20, 10), 0.0, 1e-12);
  r.schedule = "step";
  r.step_every = 1;
  r.step_gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate(r, 9, 10), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(r, 10, 10), 0.05);
  r.schedule = "constant";
  EXPECT_DOUBLE_EQ(learning_rate(r, 15, 10), 0.1);
  r.warmup_epochs = 1;
  EXPECT_DOUBLE_EQ(learning_rate(r, 4, 10), 0.05);
}

// The first layer's input is data: its backward skips the BP product but still produces dW.
TEST(Bdwp, FirstLayerSkipsOnlyTheInputGradient) {
  for (const char* spec : {R"({"type": "linear", "out": 16})",
                           R"({"type": "conv2d", "out": 8, "kernel": 3, "padding": 1})"}) {
    const bool conv = std::string(spec).find("conv") != std::string::npos;
    const Shape in = conv ? Shape{8, 6, 6} : Shape{32};
    auto layer = test::build_layer(spec, in, {2, 8});
    EXPECT_TRUE(layer->skips_input_grad());
    std::vector<SparseWeight*> sws;
    layer->sparse_weights(sws);
    Shape xs = in;
    xs.insert(xs.begin(), 4);
    const Tensor x = Tensor::from_f32(xs, randn(static_cast<size_t>(numel(xs)), 3));
    std::vector<Param*> ps;
    layer->params(ps);
    EXPECT_THROW(layer->forward(x, StepContext{Method::bdwp, true}), Error);   // forms not made yet
    sws[0]->regenerate(Method::bdwp);
    auto grads = [&](bool input_grad) {
      for (Param* p : ps) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
      StepContext ctx{Method::bdwp, true, input_grad};
      const Tensor y = layer->forward(x, ctx);
      const Tensor dx = layer->backward(Tensor::from_f32(y.shape(), randn(static_cast<size_t>(y.numel()), 4)), ctx);
      return std::make_pair(dx.numel(), ps[0]->grad);
    };
    const auto [full_n, full_dw] = grads(true);
    const auto [skip_n, skip_dw] = grads(false);
    EXPECT_EQ(full_n, x.numel());
    EXPECT_EQ(skip_n, 0);
    EXPECT_EQ(full_dw, skip_dw);
  }
}
