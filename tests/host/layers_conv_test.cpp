// The convolution family: conv2d, maxpool2d, avgpool2d, global_avgpool, batchnorm2d.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "expect_error.hpp"
#include "sat/cpu_kernels.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"

using namespace sat;

using test::build_layer;

namespace {

std::vector<float> random_values(size_t n, uint64_t seed, float mean = 0, float stddev = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

std::vector<Param*> params_of(Layer& l) {
  std::vector<Param*> p;
  l.params(p);
  return p;
}

SparseWeight& sparse_weight_of(Layer& l) {
  std::vector<SparseWeight*> s;
  l.sparse_weights(s);
  EXPECT_EQ(s.size(), 1u);
  return *s.at(0);
}

// Every element within tol of the reference, relative to the reference's largest magnitude.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) > tol * scale && reported++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
    }
  }
}

using test::expect_error;

// A direct convolution, written as its list of taps: every (input element, weight, output
// element) triple that forward multiplies. The forward pass, dx and dW are each one sum over it.
struct ConvGeom {
  int64_t batch, cin, h, w, cout, k, stride, pad;
  int64_t oh() const { return (h + 2 * pad - k) / stride + 1; }
  int64_t ow() const { return (w + 2 * pad - k) / stride + 1; }
  int64_t kdim() const { return cin * k * k; }

  template <typename F>
  void for_each_tap(F&& f) const {
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t o = 0; o < cout; ++o)
        for (int64_t oy = 0; oy < oh(); ++oy)
          for (int64_t ox = 0; ox < ow(); ++ox)
            for (int64_t c = 0; c < cin; ++c)
              for (int64_t ky = 0; ky < k; ++ky)
                for (int64_t kx = 0; kx < k; ++kx) {
                  const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  f(((b * cin + c) * h + iy) * w + ix, o * kdim() + (c * k + ky) * k + kx,
                    ((b * cout + o) * oh() + oy) * ow() + ox);
                }
  }

  std::vector<double> forward(const std::vector<float>& x, const std::vector<float>& wt,
                              const std::vector<float>& bias) const {
    std::vector<double> y(static_cast<size_t>(batch * cout * oh() * ow()));
    for (size_t i = 0; i < y.size(); ++i) y[i] = bias.empty() ? 0 : bias[(i / (oh() * ow())) % cout];
    for_each_tap([&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += double(wt[wi]) * x[xi]; });
    return y;
  }
  std::vector<double> dx(const std::vector<float>& dy, const std::vector<float>& wt) const {
    std::vector<double> d(static_cast<size_t>(batch * cin * h * w));
    for_each_tap([&](int64_t xi, int64_t wi, int64_t yi) { d[xi] += double(wt[wi]) * dy[yi]; });
    return d;
  }
  std::vector<double> dw(const std::vector<float>& dy, const std::vector<float>& x) const {
    std::vector<double> d(static_cast<size_t>(cout * kdim()));
    for_each_tap([&](int64_t xi, int64_t wi, int64_t yi) { d[wi] += double(dy[yi]) * x[xi]; });
    return d;
  }
  std::vector<double> dbias(const std::vector<float>& dy) const {
    std::vector<double> d(static_cast<size_t>(cout));
    for (size_t i = 0; i < dy.size(); ++i) d[(i / (oh() * ow())) % cout] += dy[i];
    return d;
  }
};

std::string conv_json(const ConvGeom& g) {
  return R"({"type": "conv2d", "out": )" + std::to_string(g.cout) +
         R"(, "kernel": )" + std::to_string(g.k) + R"(, "stride": )" + std::to_string(g.stride) +
         R"(, "padding": )" + std::to_string(g.pad) + "}";
}

// Runs forward and backward of a conv2d under `method` in exact FP32 and compares them with the
// direct convolution: FF with weights w_ff, BP with weights w_bp, WU and the bias dense.
void check_conv_against_direct(Layer& l, const ConvGeom& g, Method method,
                               const std::vector<float>& w_ff, const std::vector<float>& w_bp) {
  NumericsScope exact(Numerics::fp32);                          // weight forms unrounded too
  sparse_weight_of(l).regenerate(method);
  const std::vector<Param*> p = params_of(l);
  for (Param* q : p) std::fill(q->grad.begin(), q->grad.end(), 0.0f);
  const std::vector<float> x = random_values(static_cast<size_t>(g.batch * g.cin * g.h * g.w), 3);
  const StepContext ctx{method, true};
  const Tensor y = l.forward(Tensor::from_f32({g.batch, g.cin, g.h, g.w}, x), ctx);
  ASSERT_EQ(y.shape(), (Shape{g.batch, g.cout, g.oh(), g.ow()}));
  expect_close(y.to_f32(), g.forward(x, w_ff, p[1]->value), 1e-5, "y");

  const std::vector<float> dy = random_values(static_cast<size_t>(y.numel()), 4);
  const Tensor dx = l.backward(Tensor::from_f32(y.shape(), dy), ctx);
  ASSERT_EQ(dx.shape(), (Shape{g.batch, g.cin, g.h, g.w}));
  expect_close(dx.to_f32(), g.dx(dy, w_bp), 1e-5, "dx");
  expect_close(p[0]->grad, g.dw(dy, x), 1e-5, "dW");
  expect_close(p[1]->grad, g.dbias(dy), 1e-5, "dbias");
}

}  // namespace

// ---- conv2d -----------------------------------------------------------------------------------

TEST(Conv2d, MatchesDirectConvolution) {
  const ConvGeom g{3, 3, 9, 8, 5, 3, 2, 1};
  auto l = build_layer(conv_json(g), {g.cin, g.h, g.w});
  EXPECT_EQ(l->out_shape, (Shape{5, 5, 4}));
  const std::vector<float> w = params_of(*l)[0]->value;
  check_conv_against_direct(*l, g, Method::dense, w, w);
}

TEST(Conv2d, BdwpPrunesForwardAlongKAndBackwardAlongCout) {
  const ConvGeom g{2, 8, 7, 6, 16, 3, 1, 1};                   // K = 72, Cout = 16
  auto l = build_layer(conv_json(g), {g.cin, g.h, g.w}, NM{2, 8});
  ASSERT_TRUE(sparse_weight_of(*l).sparse());
  const std::vector<float>& w = params_of(*l)[0]->value;
  const std::vector<float> w_f = nm_prune(w.data(), g.cout, g.kdim(), NM{2, 8}, Axis::K);
  const std::vector<float> w_b = nm_prune(w.data(), g.cout, g.kdim(), NM{2, 8}, Axis::Cout);
  ASSERT_NE(w_f, w_b);
  check_conv_against_direct(*l, g, Method::bdwp, w_f, w_b);
}

TEST(Conv2d, SrsteBackpropagatesThroughTheForwardMask) {
  const ConvGeom g{2, 8, 5, 5, 8, 3, 1, 0};
  auto l = build_layer(conv_json(g), {g.cin, g.h, g.w}, NM{2, 8});
  const std::vector<float>& w = params_of(*l)[0]->value;
  const std::vector<float> w_f = nm_prune(w.data(), g.cout, g.kdim(), NM{2, 8}, Axis::K);
  check_conv_against_direct(*l, g, Method::srste, w_f, w_f);
}

// Enough images that the layer lowers the batch in more than one chunk (its scratch bound is
// 128 MiB, 20 KiB floats per image here), so backward lowers each chunk again and dW accumulates
// across chunks.
TEST(Conv2d, LargeBatchMatchesDirectConvolution) {
  const ConvGeom g{1700, 1, 32, 32, 2, 3, 1, 1};
  auto l = build_layer(conv_json(g), {g.cin, g.h, g.w});
  const std::vector<float> w = params_of(*l)[0]->value;
  check_conv_against_direct(*l, g, Method::dense, w, w);
}

TEST(Conv2d, DescribeCountsPerSampleWork) {
  auto l = build_layer(R"({"type": "conv2d", "out": 64, "kernel": 3, "padding": 1})", {32, 14, 14},
                       NM{2, 8});
  std::vector<LayerInfo> info;
  l->describe(info, Method::bdwp);
  l->describe(info, Method::dense);
  ASSERT_EQ(info.size(), 2u);
  const double dense = 2.0 * 14 * 14 * 64 * 288;
  EXPECT_EQ(info[0].out, (Shape{64, 14, 14}));
  EXPECT_DOUBLE_EQ(info[0].flops_ff, dense / 4);
  EXPECT_DOUBLE_EQ(info[0].flops_bp, dense / 4);
  EXPECT_DOUBLE_EQ(info[0].flops_wu, dense);
  EXPECT_EQ(info[0].params, 64 * 288 + 64);
  EXPECT_EQ(info[0].sparsity, "2:8 FF+BP");
  EXPECT_DOUBLE_EQ(info[1].flops_ff, dense);
  EXPECT_EQ(info[1].sparsity, "dense (method dense)");
}

TEST(Conv2d, StaysDenseWhenCoutDoesNotDivideByM) {
  auto l = build_layer(R"({"type": "conv2d", "out": 6, "kernel": 3})", {8, 5, 5}, NM{2, 8});
  std::vector<LayerInfo> info;
  l->describe(info, Method::bdwp);
  EXPECT_FALSE(sparse_weight_of(*l).sparse());
  EXPECT_NE(info.at(0).sparsity.find("dense ("), std::string::npos) << info[0].sparsity;
}

TEST(Conv2d, RejectsBadInput) {
  expect_error([] { build_layer(R"({"type": "conv2d", "out": 4, "kernel": 3})", {3, 8}); },
               "expected input [channels, height, width], got [3, 8]");
  expect_error([] { build_layer(R"({"type": "conv2d", "out": 4, "kernel": 5, "padding": 1})",
                                {1, 2, 8}); },
               "kernel 5 is larger than the input padded by 1");
  expect_error([] { build_layer(R"({"type": "conv2d", "kernel": 3})", {1, 8, 8}); },
               "missing field \"out\"");
  expect_error([] { build_layer(R"({"type": "conv2d", "out": 4, "kernal": 3})", {1, 8, 8}); },
               "unknown field \"kernal\"");
  expect_error([] { build_layer(R"({"type": "conv2d", "out": 4, "kernel": 3, "stride": 0})",
                                {1, 8, 8}); },
               "\"stride\" must be >= 1");
  auto l = build_layer(R"({"type": "conv2d", "out": 4, "kernel": 3})", {1, 8, 8});
  expect_error([&] { l->forward(Tensor({2, 8, 8}), StepContext{}); },
               "expected input [batch, 1, 8, 8], got [2, 8, 8]");
  expect_error([&] { l->forward(Tensor({2, 2, 8, 8}), StepContext{}); },
               "expected input [batch, 1, 8, 8], got [2, 2, 8, 8]");
}

TEST(Conv2d, BackwardNeedsATrainingForward) {
  auto l = build_layer(R"({"type": "conv2d", "out": 4, "kernel": 3})", {1, 8, 8});
  sparse_weight_of(*l).regenerate(Method::dense);
  const Tensor y = l->forward(Tensor({2, 1, 8, 8}), StepContext{Method::dense, false});
  expect_error([&] { l->backward(y, StepContext{Method::dense, true}); },
               "backward needs a forward in training mode");
}

TEST(GradCheck, Conv2d) {
  auto l = build_layer(R"({"type": "conv2d", "out": 4, "kernel": 3})", {3, 6, 5});
  test::grad_check(*l, {2, 3, 6, 5});
}

TEST(GradCheck, Conv2dStride2Padding1) {
  auto l = build_layer(R"({"type": "conv2d", "out": 3, "kernel": 3, "stride": 2, "padding": 1})",
                       {2, 7, 6});
  EXPECT_EQ(l->out_shape, (Shape{3, 4, 3}));
  test::grad_check(*l, {2, 2, 7, 6});
}

TEST(GradCheck, Conv2dNoBias) {
  auto l = build_layer(R"({"type": "conv2d", "out": 3, "kernel": 2, "bias": false})", {2, 5, 5});
  EXPECT_EQ(params_of(*l).size(), 1u);
  test::grad_check(*l, {2, 2, 5, 5});
}

TEST(GradCheck, Conv2dPointwiseStride2) {
  auto l = build_layer(R"({"type": "conv2d", "out": 5, "kernel": 1, "stride": 2})", {3, 5, 6});
  EXPECT_EQ(l->out_shape, (Shape{5, 3, 3}));
  test::grad_check(*l, {2, 3, 5, 6});
}

TEST(GradCheck, Conv2dLargePadding) {
  auto l = build_layer(R"({"type": "conv2d", "out": 2, "kernel": 3, "stride": 3, "padding": 2})",
                       {2, 4, 5});
  test::grad_check(*l, {2, 2, 4, 5});
}

// ---- pooling ----------------------------------------------------------------------------------

TEST(GradCheck, MaxPool2d) {
  auto l = build_layer(R"({"type": "maxpool2d", "kernel": 2})", {2, 6, 7});
  EXPECT_EQ(l->out_shape, (Shape{2, 3, 3}));
  test::grad_check(*l, {2, 2, 6, 7});
}

TEST(GradCheck, MaxPool2dOverlappingPadded) {
  auto l = build_layer(R"({"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1})",
                       {2, 7, 6});
  EXPECT_EQ(l->out_shape, (Shape{2, 4, 3}));
  test::grad_check(*l, {2, 2, 7, 6});
}

TEST(GradCheck, AvgPool2d) {
  auto l = build_layer(R"({"type": "avgpool2d", "kernel": 3, "stride": 2, "padding": 1})",
                       {2, 7, 6});
  test::grad_check(*l, {2, 2, 7, 6});
}

TEST(GradCheck, GlobalAvgPool) {
  auto l = build_layer(R"({"type": "global_avgpool"})", {3, 4, 5});
  EXPECT_EQ(l->out_shape, (Shape{3}));
  test::grad_check(*l, {2, 3, 4, 5});
}

TEST(Pool, MaxPoolTiesGoToTheFirstMaximum) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "maxpool2d", "kernel": 2})", {1, 2, 4});
  // Windows {1, 7, 7, 7} and {2, 2, 2, 2}: the first 7 (row 0) and the very first 2 win.
  const Tensor x = Tensor::from_f32({1, 1, 2, 4}, std::vector<float>{1, 7, 2, 2, 7, 7, 2, 2});
  const StepContext ctx{Method::dense, true};
  EXPECT_EQ(l->forward(x, ctx).to_f32(), (std::vector<float>{7, 2}));
  const Tensor dx = l->backward(Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{10, 20}), ctx);
  EXPECT_EQ(dx.to_f32(), (std::vector<float>{0, 10, 20, 0, 0, 0, 0, 0}));
}

// The 2x2 / stride 2 layer on BF16 activations (cpu/simd.cpp, on the BF16 bits) against the FP32
// path on the same values: same outputs, same winners (ties, a NaN, odd sizes whose last row and
// column no window covers), on every SIMD path.
TEST(Pool, MaxPool2x2OnBf16MatchesTheFp32Path) {
  const Shape in{3, 9, 11}, x_shape{2, 3, 9, 11};
  std::vector<float> v = random_values(static_cast<size_t>(numel(x_shape)), 8);
  for (size_t i = 0; i < v.size(); ++i) v[i] = round_bf16(std::round(v[i] * 2) / 2);  // many ties
  v[40] = NAN;
  v[41] = round_bf16(1e30f);
  std::vector<float> g = random_values(2 * 3 * 4 * 5, 9);
  for (float& x : g) x = round_bf16(x);
  const StepContext ctx{Method::dense, true};
  std::vector<float> y32, dx32;
  {
    NumericsScope exact(Numerics::fp32);
    auto l = build_layer(R"({"type": "maxpool2d", "kernel": 2})", in);
    y32 = l->forward(Tensor::from_f32(x_shape, v), ctx).to_f32();
    dx32 = l->backward(Tensor::from_f32({2, 3, 4, 5}, g), ctx).to_f32();
  }
  std::stringstream list(cpu::simd_paths_available());
  for (std::string path; std::getline(list, path, ',');) {
    path.erase(0, path.find_first_not_of(' '));
    ASSERT_TRUE(cpu::force_simd_path(path));
    auto l = build_layer(R"({"type": "maxpool2d", "kernel": 2})", in);
    const Tensor x = Tensor::from_f32(x_shape, v);
    ASSERT_EQ(x.dtype(), DType::bf16);
    const std::vector<float> y = l->forward(x, ctx).to_f32();
    ASSERT_EQ(y.size(), y32.size());
    for (size_t i = 0; i < y.size(); ++i) {
      EXPECT_TRUE(y[i] == y32[i] || (std::isnan(y[i]) && std::isnan(y32[i])))
          << path << " y[" << i << "] " << y[i] << " vs " << y32[i];
    }
    EXPECT_EQ(l->backward(Tensor::from_f32({2, 3, 4, 5}, g), ctx).to_f32(), dx32) << path;
  }
  cpu::force_simd_path("best");
}

TEST(Pool, MaxPoolPaddingNeverWins) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "maxpool2d", "kernel": 2, "padding": 1})", {1, 2, 2});
  const Tensor x = Tensor::from_f32({1, 1, 2, 2}, std::vector<float>{-1, -2, -3, -4});
  EXPECT_EQ(l->forward(x, StepContext{}).to_f32(), (std::vector<float>{-1, -2, -3, -4}));
}

TEST(Pool, MaxPoolPropagatesNaN) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "maxpool2d", "kernel": 2})", {1, 2, 2});
  const Tensor x = Tensor::from_f32({1, 1, 2, 2}, std::vector<float>{1, NAN, 3, 2});
  EXPECT_TRUE(std::isnan(l->forward(x, StepContext{}).to_f32()[0]));
}

TEST(Pool, AvgPoolCountsPaddingInTheDivisor) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "avgpool2d", "kernel": 2, "stride": 2, "padding": 1})",
                       {1, 2, 2});
  ASSERT_EQ(l->out_shape, (Shape{1, 2, 2}));
  const Tensor x = Tensor::from_f32({1, 1, 2, 2}, std::vector<float>{4, 8, 12, 16});
  const StepContext ctx{Method::dense, true};
  EXPECT_EQ(l->forward(x, ctx).to_f32(), (std::vector<float>{1, 2, 3, 4}));
  const Tensor dx = l->backward(Tensor::from_f32({1, 1, 2, 2}, std::vector<float>{4, 4, 4, 4}), ctx);
  EXPECT_EQ(dx.to_f32(), (std::vector<float>{1, 1, 1, 1}));
}

TEST(Pool, RejectsBadInput) {
  expect_error([] { build_layer(R"({"type": "maxpool2d", "kernel": 3, "padding": 2})", {1, 8, 8}); },
               "\"padding\" must be between 0 and kernel / 2 = 1");
  expect_error([] { build_layer(R"({"type": "avgpool2d", "stride": 2})", {1, 8, 8}); },
               "missing field \"kernel\"");
  expect_error([] { build_layer(R"({"type": "maxpool2d", "kernel": 2, "size": 2})", {1, 8, 8}); },
               "unknown field \"size\"");
  expect_error([] { build_layer(R"({"type": "maxpool2d", "kernel": 4})", {1, 3, 8}); },
               "kernel 4 is larger than the input");
  expect_error([] { build_layer(R"({"type": "avgpool2d", "kernel": 2})", {8, 8}); },
               "expected input [channels, height, width], got [8, 8]");
  expect_error([] { build_layer(R"({"type": "global_avgpool"})", {8}); },
               "expected input [channels, height, width], got [8]");
  expect_error([] { build_layer(R"({"type": "global_avgpool", "kernel": 2})", {1, 8, 8}); },
               "unknown field \"kernel\"");
}

// ---- batchnorm2d ------------------------------------------------------------------------------

TEST(GradCheck, BatchNorm2dTraining) {
  auto l = build_layer(R"({"type": "batchnorm2d"})", {3, 4, 5});
  const std::vector<Param*> p = params_of(*l);
  p[0]->value = {0.5f, 1.5f, -2.0f};
  p[1]->value = {0.1f, -0.3f, 0.7f};
  test::grad_check(*l, {4, 3, 4, 5});
}

TEST(BatchNorm, TrainingNormalisesWithBatchStatisticsAndUpdatesRunningStatistics) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "batchnorm2d", "momentum": 0.2})", {2, 3, 3});
  const std::vector<float> x = random_values(4 * 2 * 9, 5, 3.0f, 2.0f);
  const std::vector<float> y =
      l->forward(Tensor::from_f32({4, 2, 3, 3}, x), StepContext{Method::dense, true}).to_f32();
  const std::vector<Param*> p = params_of(*l);
  for (int64_t c = 0; c < 2; ++c) {
    double sx = 0, sxx = 0, sy = 0, syy = 0;
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 0; i < 9; ++i) {
        const size_t j = static_cast<size_t>((b * 2 + c) * 9 + i);
        sx += x[j], sxx += double(x[j]) * x[j], sy += y[j], syy += double(y[j]) * y[j];
      }
    const double mean = sx / 36, var = sxx / 36 - mean * mean;
    const double var_y = syy / 36 - (sy / 36) * (sy / 36);
    EXPECT_NEAR(sy / 36, 0.0, 1e-5);
    EXPECT_NEAR(var_y, var / (var + 1e-5), 1e-4);              // biased variance normalises
    EXPECT_NEAR(p[2]->value[c], 0.2 * mean, 1e-4);
    EXPECT_NEAR(p[3]->value[c], 0.8 + 0.2 * var * 36 / 35, 1e-4);   // unbiased into the running
  }
}

TEST(BatchNorm, InferenceUsesRunningStatistics) {
  NumericsScope exact(Numerics::fp32);
  auto l = build_layer(R"({"type": "batchnorm2d", "eps": 0.01})", {2, 1, 2});
  const std::vector<Param*> p = params_of(*l);
  p[0]->value = {2.0f, 0.5f};
  p[1]->value = {1.0f, -1.0f};
  p[2]->value = {1.0f, -2.0f};
  p[3]->value = {3.99f, 0.24f};                                 // + eps: 4 and 0.25
  const Tensor x = Tensor::from_f32({1, 2, 1, 2}, std::vector<float>{1, 5, -2, -1.5f});
  const std::vector<float> y = l->forward(x, StepContext{Method::dense, false}).to_f32();
  const std::vector<double> want = {1.0, 5.0, -1.0, -0.5};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-6) << i;
  EXPECT_EQ(p[2]->value, (std::vector<float>{1.0f, -2.0f}));       // inference leaves them
  EXPECT_EQ(p[3]->value, (std::vector<float>{3.99f, 0.24f}));
}

TEST(BatchNorm, ParamsAndSummary) {
  auto l = build_layer(R"({"type": "batchnorm2d"})", {8, 4, 4});
  const std::vector<Param*> p = params_of(*l);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0]->name, "t.weight");
  EXPECT_EQ(p[0]->value, std::vector<float>(8, 1.0f));
  EXPECT_EQ(p[1]->value, std::vector<float>(8, 0.0f));
  EXPECT_EQ(p[2]->value, std::vector<float>(8, 0.0f));
  EXPECT_EQ(p[3]->value, std::vector<float>(8, 1.0f));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(p[i]->trainable, i < 2) << p[i]->name;
    EXPECT_FALSE(p[i]->decay) << p[i]->name;
  }
  std::vector<LayerInfo> info;
  l->describe(info, Method::bdwp);
  EXPECT_EQ(info.at(0).params, 16);
  EXPECT_EQ(info.at(0).sparsity, "-");
}

TEST(BatchNorm, RejectsBadInput) {
  expect_error([] { build_layer(R"({"type": "batchnorm2d", "momentum": 1.5})", {2, 4, 4}); },
               "\"momentum\" must be between 0 and 1");
  expect_error([] { build_layer(R"({"type": "batchnorm2d", "eps": 0})", {2, 4, 4}); },
               "\"eps\" must be > 0");
  expect_error([] { build_layer(R"({"type": "batchnorm2d", "affine": false})", {2, 4, 4}); },
               "unknown field \"affine\"");
  expect_error([] { build_layer(R"({"type": "batchnorm2d"})", {16}); },
               "expected input [channels, height, width], got [16]");
  auto l = build_layer(R"({"type": "batchnorm2d"})", {2, 1, 1});
  expect_error([&] { l->forward(Tensor({1, 2, 1, 1}), StepContext{Method::dense, true}); },
               "more than one value per channel");
}
