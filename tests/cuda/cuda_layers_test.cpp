// The layer kernels of the GPU-resident step (kernels/layer_kernels.cu) against the CPU layers
// (host/src/layers/) on the same BF16 inputs, forward and backward, and the resident step of
// models with every supported layer type against the CPU backend. Tolerances (docs/cuda.md):
// ReLU, pooling, flatten, the residual add and global pooling compute in the CPU's order and
// precision and must be equal bit for bit; BatchNorm's statistics are one pass in double on the GPU
// (two on the CPU), so its outputs may differ by one BF16 rounding: 2^-7 relative to max(1, |cpu|).
// Without a GPU every test skips with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend_compare.hpp"
#include "require_gpu.hpp"
#include "sat/backend.hpp"
#include "sat/data.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"

#ifdef SAT_CUDA_BUILT
#include <cuda_runtime.h>

#include "cudnn_bn.hpp"
#include "layer_ops.hpp"
#include "ops.hpp"
#include "resident.hpp"
#include "transformer_ops.hpp"
#endif

using namespace sat;

#ifdef SAT_CUDA_BUILT

namespace {

struct DevBuf {
  void* p = nullptr;
  explicit DevBuf(size_t bytes) {
    if (cudaMalloc(&p, std::max<size_t>(bytes, 4)) != cudaSuccess) throw Error("test: cudaMalloc failed");
    cudaMemset(p, 0, std::max<size_t>(bytes, 4));
  }
  ~DevBuf() { cudaFree(p); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

// A model whose first layer is `layer` (JSON) on per-sample input `in`; a classifier follows, since
// a model must end in its classes. The tests use layers[0] alone.
Model one_layer(const std::string& layer, const Shape& in) {
  std::string shape = "[";
  for (size_t i = 0; i < in.size(); ++i) shape += (i ? ", " : "") + std::to_string(in[i]);
  shape += "]";
  return Model::from_json_text(R"({"name": "t", "input": )" + shape + R"(, "classes": 10, "layers": [)" + layer +
                                   R"(, {"type": "flatten"}, {"type": "linear", "out": 10}]})",
                               "test layer");
}

Tensor rand_tensor(const Shape& s, uint64_t seed) {
  const std::vector<float> v = test::randn(static_cast<size_t>(sat::numel(s)), seed, seed % 2 == 0);
  return Tensor::from_f32(s, v);
}

// Host NCHW tensor <-> device channels-last rows.
std::vector<uint16_t> bits(const Tensor& t) {
  std::vector<uint16_t> b(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) b[i] = t.bf16_data()[i].bits;
  return b;
}

struct Img {
  int64_t nb, c, hw;
};

// Uploads an NCHW tensor as channels-last rows.
DevBuf* upload_nhwc(const Tensor& t, const Img& g) {
  auto* d = new DevBuf(t.numel() * 2);
  DevBuf raw(t.numel() * 2);
  const std::vector<uint16_t> b = bits(t);
  cudaMemcpy(raw.p, b.data(), b.size() * 2, cudaMemcpyHostToDevice);
  cuda::nchw_to_nhwc(raw.as<uint16_t>(), g.nb, g.c, g.hw, d->as<uint16_t>(), 0);
  return d;
}

// Downloads channels-last rows as NCHW floats.
std::vector<float> download_nchw(const uint16_t* d, const Img& g) {
  const int64_t n = g.nb * g.c * g.hw;
  DevBuf t(n * 2);
  cuda::nhwc_to_nchw(d, g.nb, g.c, g.hw, t.as<uint16_t>(), 0);
  std::vector<uint16_t> b(static_cast<size_t>(n));
  EXPECT_EQ(cudaMemcpy(b.data(), t.p, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = bf16_bits_to_f32(b[i]);
  return f;
}

void expect_equal(const std::vector<float>& got, const Tensor& want, const char* what) {
  const std::vector<float> w = want.to_f32();
  ASSERT_EQ(got.size(), w.size()) << what;
  for (size_t i = 0; i < w.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(got[i])) continue;
    ASSERT_EQ(got[i], w[i]) << what << " differs at " << i;
  }
}

void expect_close(const std::vector<float>& got, const Tensor& want, double rel, const char* what) {
  const std::vector<float> w = want.to_f32();
  ASSERT_EQ(got.size(), w.size()) << what;
  for (size_t i = 0; i < w.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - w[i]), rel * std::max(1.0f, std::fabs(w[i]))) << what << " at " << i;
  }
}

}  // namespace

// Host rows <-> device rows, for token activations ([nb, T, D] is already [nb*T][D]).
std::unique_ptr<DevBuf> upload_rows(const Tensor& t) {
  auto d = std::make_unique<DevBuf>(t.numel() * 2);
  const std::vector<uint16_t> b = bits(t);
  cudaMemcpy(d->p, b.data(), b.size() * 2, cudaMemcpyHostToDevice);
  return d;
}
std::vector<float> download_rows(const uint16_t* d, int64_t n) {
  std::vector<uint16_t> b(static_cast<size_t>(n));
  EXPECT_EQ(cudaMemcpy(b.data(), d, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = bf16_bits_to_f32(b[i]);
  return f;
}
std::unique_ptr<DevBuf> upload_f32(const std::vector<float>& v) {
  auto d = std::make_unique<DevBuf>(v.size() * 4);
  cudaMemcpy(d->p, v.data(), v.size() * 4, cudaMemcpyHostToDevice);
  return d;
}
std::vector<float> download_f32(const float* d, size_t n) {
  std::vector<float> f(n);
  EXPECT_EQ(cudaMemcpy(f.data(), d, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  return f;
}

// LayerNorm (two widths, one not a multiple of the 32-row tile's width), GELU in both forms and the
// token mean, forward and backward, against the CPU layers. LayerNorm and the token mean make the
// CPU's operations in its order and precision: equal bit for bit, and the LayerNorm parameter
// gradients (double sums combined per block of rows, the CPU's in one run) within 1e-6. GELU calls
// CUDA's erf/exp/tanh (within 2 ulp of glibc's, in double) and may differ by one BF16 rounding.
TEST(CudaLayers, TransformerLayersMatchCpu) {
  SAT_REQUIRE_GPU();
  const std::vector<std::pair<std::string, Shape>> cases = {
      {R"({"type": "layernorm"})", {49, 128}},
      {R"({"type": "layernorm", "eps": 1e-3})", {7, 45}},
      {R"({"type": "gelu"})", {7, 45}},
      {R"({"type": "gelu", "approximate": "tanh"})", {7, 45}},
      {R"({"type": "token_mean"})", {7, 45}},
  };
  const int64_t nb = 5;
  uint64_t seed = 11;
  for (const auto& [layer, in] : cases) {
    SCOPED_TRACE(layer);
    Model m = one_layer(layer, in);
    Layer& l = *m.layers[0];
    std::vector<Param*> ps;
    l.params(ps);
    for (Param* p : ps) p->value = test::randn(p->value.size(), seed++, false);   // gamma, beta away from 1, 0
    Shape xs = in, ys = l.out_shape;
    xs.insert(xs.begin(), nb);
    ys.insert(ys.begin(), nb);
    const Tensor x = rand_tensor(xs, seed++), dy = rand_tensor(ys, seed++);
    StepContext ctx{Method::dense, true};
    const Tensor y = l.forward(x, ctx);
    const Tensor dx = l.backward(dy, ctx);

    auto X = upload_rows(x), DY = upload_rows(dy);
    DevBuf Y(y.numel() * 2), DX(x.numel() * 2);
    const std::string t = l.type();
    const int64_t rows = nb * in[0], d = in[1];
    if (t == "layernorm") {
      auto gamma = upload_f32(ps[0]->value), beta = upload_f32(ps[1]->value);
      DevBuf xhat(x.numel() * 4), rstd(rows * 4), grads(2 * d * 4), part(cuda::layernorm_partials(rows, d) * 8);
      ASSERT_EQ(cuda::layernorm_unsupported(d), "");
      cuda::layernorm_forward(X->as<uint16_t>(), rows, d, l.attrs()["eps"].get<double>(), gamma->as<float>(),
                              beta->as<float>(), xhat.as<float>(), rstd.as<float>(), Y.as<uint16_t>(), 0);
      cuda::layernorm_backward(DY->as<uint16_t>(), xhat.as<float>(), rstd.as<float>(), rows, d, gamma->as<float>(),
                               grads.as<float>(), grads.as<float>() + d, part.as<double>(), DX.as<uint16_t>(), 0);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> g = download_f32(grads.as<float>(), 2 * d);
      for (int64_t j = 0; j < d; ++j) {
        EXPECT_NEAR(g[j], ps[0]->grad[j], 1e-6 * std::max(1.0f, std::fabs(ps[0]->grad[j]))) << "gamma grad " << j;
        EXPECT_NEAR(g[d + j], ps[1]->grad[j], 1e-6 * std::max(1.0f, std::fabs(ps[1]->grad[j]))) << "beta grad " << j;
      }
      expect_equal(download_rows(Y.as<uint16_t>(), y.numel()), y, "forward");
      expect_equal(download_rows(DX.as<uint16_t>(), x.numel()), dx, "backward");
    } else if (t == "gelu") {
      const bool tanh_form = l.attrs()["tanh"].get<bool>();
      cuda::gelu_forward(X->as<uint16_t>(), x.numel(), tanh_form, Y.as<uint16_t>(), 0);
      cuda::gelu_backward(X->as<uint16_t>(), DY->as<uint16_t>(), x.numel(), tanh_form, DX.as<uint16_t>(), 0);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      expect_close(download_rows(Y.as<uint16_t>(), y.numel()), y, 1.0 / 128, "forward");
      expect_close(download_rows(DX.as<uint16_t>(), x.numel()), dx, 1.0 / 128, "backward");
    } else {
      cuda::token_mean_forward(X->as<uint16_t>(), nb, in[0], d, Y.as<uint16_t>(), 0);
      cuda::token_mean_backward(DY->as<uint16_t>(), nb, in[0], d, DX.as<uint16_t>(), 0);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      expect_equal(download_rows(Y.as<uint16_t>(), y.numel()), y, "forward");
      expect_equal(download_rows(DX.as<uint16_t>(), x.numel()), dx, "backward");
    }
  }
}

// Which transformer shapes run resident, and the reason given for one that does not: ViT-tiny's
// layers all do; a ViT-Base-sized attention (197 tokens, heads of 64) exceeds one block's shared
// memory and falls back to the host-layer path with the layer named.
TEST(CudaLayers, ResidentCoverageOfTransformers) {
  SAT_REQUIRE_GPU();
  Model vit = test::load_test_model("vit_tiny");
  EXPECT_EQ(cuda::resident_unsupported(vit), "");
  Model big = Model::from_json_text(R"({"name": "b", "input": [197, 768], "classes": 10, "layers": [
      {"type": "attention", "heads": 12}, {"type": "token_mean"}, {"type": "linear", "out": 10}]})", "test");
  const std::string why = cuda::resident_unsupported(big);
  EXPECT_NE(why.find("attention"), std::string::npos) << why;
  EXPECT_NE(why.find("197 tokens"), std::string::npos) << why;
  Model map_norm = Model::from_json_text(R"({"name": "c", "input": [4, 6, 6], "classes": 10, "layers": [
      {"type": "layernorm"}, {"type": "flatten"}, {"type": "linear", "out": 10}]})", "test");
  EXPECT_NE(cuda::resident_unsupported(map_norm).find("channels-last"), std::string::npos);
}

// ReLU, max and average pooling (strided, padded, overlapping windows), global pooling: forward and
// backward equal to the CPU layers bit for bit.
TEST(CudaLayers, ElementwiseAndPoolingMatchCpuExactly) {
  SAT_REQUIRE_GPU();
  struct Case {
    std::string layer;
    Shape in;
  };
  const std::vector<Case> cases = {
      {R"({"type": "relu"})", {5, 6, 7}},
      {R"({"type": "relu"})", {8, 4, 4}},   // a multiple of 8 elements: the 16-byte path
      {R"({"type": "maxpool2d", "kernel": 2})", {3, 8, 10}},
      {R"({"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1})", {4, 9, 7}},
      {R"({"type": "avgpool2d", "kernel": 2})", {3, 8, 6}},
      {R"({"type": "avgpool2d", "kernel": 3, "stride": 2, "padding": 1})", {4, 9, 7}},
      {R"({"type": "global_avgpool"})", {6, 5, 5}},
  };
  const int64_t nb = 3;
  uint64_t seed = 3;
  for (const Case& k : cases) {
    SCOPED_TRACE(k.layer);
    Model m = one_layer(k.layer, k.in);
    Layer& l = *m.layers[0];
    Shape xs = k.in, ys = l.out_shape;
    xs.insert(xs.begin(), nb);
    ys.insert(ys.begin(), nb);
    const Tensor x = rand_tensor(xs, seed++);
    const Tensor dy = rand_tensor(ys, seed++);
    StepContext ctx{Method::dense, true};
    const Tensor y = l.forward(x, ctx);
    const Tensor dx = l.backward(dy, ctx);

    const Img gi{nb, k.in[0], k.in[1] * k.in[2]};
    const bool flat_out = l.out_shape.size() == 1;
    const Img go{nb, l.out_shape[0], flat_out ? 1 : l.out_shape[1] * l.out_shape[2]};
    std::unique_ptr<DevBuf> dxin(upload_nhwc(x, gi)), ddy(upload_nhwc(dy, go));
    DevBuf dyout(y.numel() * 2), ddx(x.numel() * 2), am(y.numel() * 4);
    const std::string t = l.type();
    const auto a = l.attrs();
    cuda::PoolGeometry pg{};
    if (t == "maxpool2d" || t == "avgpool2d") {
      pg = {k.in[0], k.in[1], k.in[2], a["kernel"].get<int64_t>(), a["stride"].get<int64_t>(),
            a["padding"].get<int64_t>(), l.out_shape[1], l.out_shape[2]};
    }
    uint16_t *X = dxin->as<uint16_t>(), *Y = dyout.as<uint16_t>(), *DY = ddy->as<uint16_t>(), *DX = ddx.as<uint16_t>();
    if (t == "relu") {
      cuda::relu_forward(X, x.numel(), Y, 0);
      cuda::relu_backward(Y, DY, x.numel(), DX, 0);
    } else if (t == "maxpool2d") {
      cuda::maxpool_forward(X, pg, nb, Y, am.as<int32_t>(), 0);
      cuda::maxpool_backward(DY, am.as<int32_t>(), pg, nb, DX, 0);
    } else if (t == "avgpool2d") {
      cuda::avgpool_forward(X, pg, nb, Y, 0);
      cuda::avgpool_backward(DY, pg, nb, DX, 0);
    } else {
      cuda::gap_forward(X, nb, gi.hw, gi.c, Y, 0);
      cuda::gap_backward(DY, nb, gi.hw, gi.c, DX, 0);
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_equal(download_nchw(Y, go), y, "forward");
    expect_equal(download_nchw(DX, gi), dx, "backward");
  }
}

// The channels-last lowering, both its kernels (lowering_nhwc.cu), against the channels-first one the
// earlier path used (im2col.cu, whose col2im sums in the host col2im's order): equal bit for bit, on
// strides, paddings, 1x1, even and large kernels, a one-channel and a three-channel input and widths
// that are not multiples of the kernels' tiles.
TEST(CudaLayers, LoweringMatchesTheChannelsFirstKernelsExactly) {
  SAT_REQUIRE_GPU();
  const std::vector<ConvGeometry> geos = {
      {3, 13, 11, 3, 1, 1, 13, 11}, {16, 9, 9, 3, 2, 1, 5, 5}, {8, 8, 6, 1, 2, 0, 4, 3},
      {1, 12, 12, 5, 1, 2, 12, 12}, {40, 6, 6, 2, 2, 0, 3, 3}, {64, 8, 8, 3, 1, 1, 8, 8},
      // ResNet-18's stage shapes (col2im: 8 channels a block), a chunk that does not divide cin
      // (72 = 4 x 16 + 8), an odd kernel with no padding, and an image too large for the fast
      // col2im's shared memory (200 x 64 floats), which falls back to the row kernel.
      {64, 32, 32, 3, 1, 1, 32, 32}, {64, 32, 32, 3, 2, 1, 16, 16}, {64, 32, 32, 1, 2, 0, 16, 16},
      {72, 20, 20, 3, 1, 1, 20, 20}, {24, 9, 7, 5, 1, 0, 5, 3}, {1, 200, 64, 3, 1, 1, 200, 64}};
  const int64_t nb = 3;
  uint64_t seed = 50;
  for (const ConvGeometry& g : geos) {
    SCOPED_TRACE("cin " + std::to_string(g.cin) + " k " + std::to_string(g.k) + " s " + std::to_string(g.s));
    const int64_t ld = cuda::padded_len(g.kdim()), q = nb * g.oh * g.ow, hw = g.h * g.w;
    const Tensor x = rand_tensor({nb, g.cin, g.h, g.w}, seed++);
    const std::vector<float> xf = x.to_f32();
    DevBuf x32(xf.size() * 4), a(q * ld * 2), b(q * ld * 2);
    cudaMemcpy(x32.p, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice);
    std::unique_ptr<DevBuf> xn(upload_nhwc(x, {nb, g.cin, hw}));
    cuda::im2col_bf16(x32.as<float>(), g, nb, a.as<uint16_t>(), ld);
    cuda::im2col_nhwc(xn->as<uint16_t>(), g, nb, b.as<uint16_t>(), ld, 0, cuda::LoweringKernels::fast);
    DevBuf brows(q * ld * 2);
    cuda::im2col_nhwc(xn->as<uint16_t>(), g, nb, brows.as<uint16_t>(), ld, 0, cuda::LoweringKernels::rows);
    const std::vector<float> dcol = test::randn(static_cast<size_t>(q * g.kdim()), seed++);
    DevBuf dc(dcol.size() * 4), dx32(xf.size() * 4), dxn(xf.size() * 2);
    cudaMemcpy(dc.p, dcol.data(), dcol.size() * 4, cudaMemcpyHostToDevice);
    cuda::col2im_f32(dc.as<float>(), g.kdim(), g, nb, dx32.as<float>());
    cuda::col2im_nhwc(dc.as<float>(), g.kdim(), g, nb, dxn.as<uint16_t>(), 0, cuda::LoweringKernels::fast);
    DevBuf dxrows(xf.size() * 2);
    cuda::col2im_nhwc(dc.as<float>(), g.kdim(), g, nb, dxrows.as<uint16_t>(), 0, cuda::LoweringKernels::rows);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint16_t> ha(q * ld), hb(q * ld), hr(q * ld);
    cudaMemcpy(ha.data(), a.p, ha.size() * 2, cudaMemcpyDeviceToHost);
    cudaMemcpy(hb.data(), b.p, hb.size() * 2, cudaMemcpyDeviceToHost);
    cudaMemcpy(hr.data(), brows.p, hr.size() * 2, cudaMemcpyDeviceToHost);
    ASSERT_EQ(ha, hb) << "im2col";
    ASSERT_EQ(ha, hr) << "im2col, row kernel";
    std::vector<float> want(xf.size());
    cudaMemcpy(want.data(), dx32.p, want.size() * 4, cudaMemcpyDeviceToHost);
    expect_equal(download_nchw(dxn.as<uint16_t>(), {nb, g.cin, hw}), Tensor::from_f32(x.shape(), want), "col2im");
    expect_equal(download_nchw(dxrows.as<uint16_t>(), {nb, g.cin, hw}), Tensor::from_f32(x.shape(), want),
                 "col2im, row kernel");
  }
}

// W_B of a [cout][cin*k*k] weight, pre-generated on the GPU from its FP32 values (N:M along Cout,
// with the 2:4 re-pack), and W' rearranged from it for the transposed BP (conv_dgrad.cu); both
// freed with the object.
struct DgradForms {
  cuda::DevNM bwd{}, wt{};
  DgradForms(const float* w32, int64_t cout, const ConvGeometry& g, NM nm) {
    bwd = cuda::alloc_devnm(cout, g.kdim(), nm, Axis::Cout, true);
    cuda::PregenOut po;
    po.bwd = &bwd;
    cuda::pregen(w32, cout, g.kdim(), nm, po);
    wt = cuda::alloc_dgrad_form(bwd, g);
    cuda::dgrad_form(bwd, g, wt, 0);
  }
  ~DgradForms() {
    cuda::free_devnm(wt);
    cuda::free_devnm(bwd);
  }
  DgradForms(const DgradForms&) = delete;
  DgradForms& operator=(const DgradForms&) = delete;
};

// A convolution's input gradient summed on the host in double over (co, ky, kx), and the sum of
// the terms' magnitudes, per input pixel (NCHW): wp the weight [cout][cin*k*k], dyf dY (NCHW), any
// stride (the output pixel (iy + p - ky) / s where s divides it).
static void exact_input_gradient(const std::vector<float>& wp, const std::vector<float>& dyf, const ConvGeometry& g,
                                 int64_t cout, int64_t nb, std::vector<double>& want, std::vector<double>& mag) {
  const int64_t kdim = g.kdim(), kk = g.k * g.k;
  want.assign(static_cast<size_t>(nb * g.cin * g.h * g.w), 0.0);
  mag.assign(want.size(), 0.0);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t c = 0; c < g.cin; ++c)
      for (int64_t iy = 0; iy < g.h; ++iy)
        for (int64_t ix = 0; ix < g.w; ++ix) {
          double sum = 0, abs = 0;
          for (int64_t ky = 0; ky < g.k; ++ky) {
            const int64_t ty = iy + g.p - ky;
            if (ty < 0 || ty % g.s != 0 || ty / g.s >= g.oh) continue;
            for (int64_t kx = 0; kx < g.k; ++kx) {
              const int64_t tx = ix + g.p - kx;
              if (tx < 0 || tx % g.s != 0 || tx / g.s >= g.ow) continue;
              for (int64_t co = 0; co < cout; ++co) {
                const double t = static_cast<double>(wp[co * kdim + c * kk + ky * g.k + kx]) *
                                 dyf[((b * cout + co) * g.oh + ty / g.s) * g.ow + tx / g.s];
                sum += t;
                abs += std::fabs(t);
              }
            }
          }
          const size_t i = static_cast<size_t>(((b * g.cin + c) * g.h + iy) * g.w + ix);
          want[i] = sum;
          mag[i] = abs;
        }
}

// Transposed BP (conv_dgrad.cu): the input gradient of a stride-1 convolution from dY's lowered
// rows and W' in one product, against the col2im path (BP's FP32 rows, then col2im) and both against
// the sum in double on the host over the pruned BF16 W_B (the N:M core's) and the BF16 dY. Each
// output is one BF16 rounding of an FP32 sum of the same terms: within 2^-8 of the exact value plus
// 2e-5 of the sum of the terms' magnitudes (FP32 accumulation in any order). 2:8 runs through the
// automatic kernel, mma.sp and the general kernel (which reads W''s NMCompressed arrays), 4:8 through
// the general kernel, dense through cuBLAS; shapes with padding 0 (the transposed convolution pads by
// k-1), even kernels, channel counts that fill no tile.
TEST(CudaLayers, TransposedConvBpMatchesTheInputGradient) {
  SAT_REQUIRE_GPU();
  struct Case {
    ConvGeometry g;
    int64_t cout;
  };
  const std::vector<Case> cases = {{{64, 8, 8, 3, 1, 1, 8, 8}, 64},   {{40, 6, 5, 3, 1, 1, 6, 5}, 72},
                                   {{16, 7, 7, 5, 1, 2, 7, 7}, 32},   {{24, 9, 9, 3, 1, 0, 7, 7}, 16},
                                   {{8, 6, 6, 2, 1, 0, 5, 5}, 8},     {{20, 5, 5, 3, 1, 2, 7, 7}, 24},
                                   {{64, 32, 32, 3, 1, 1, 32, 32}, 128}};
  const std::vector<NM> settings = {{2, 8}, {4, 8}, {1, 1}};
  const int64_t nb = 2;
  uint64_t seed = 300;
  cuda::Blas blas;
  for (const Case& cs : cases) {
    for (const NM nm : settings) {
      const ConvGeometry& g = cs.g;
      const int64_t cout = cs.cout, kdim = g.kdim(), kk = g.k * g.k, hw = g.h * g.w, ohw = g.oh * g.ow;
      SCOPED_TRACE("cin " + std::to_string(g.cin) + " cout " + std::to_string(cout) + " k " + std::to_string(g.k) +
                   " p " + std::to_string(g.p) + " " + nm.str());
      ASSERT_TRUE(cuda::dgrad_applies(g));
      const std::vector<float> w = test::randn(static_cast<size_t>(cout * kdim), seed++, true);
      std::vector<float> wp(w.size());
      if (nm.dense()) {
        for (size_t i = 0; i < w.size(); ++i) wp[i] = bf16_bits_to_f32(f32_to_bf16_bits(w[i]));
      } else {
        nm_decompress(nm_compress(w.data(), cout, kdim, nm, Axis::Cout), wp.data());
      }
      const Tensor dy = rand_tensor({nb, cout, g.oh, g.ow}, seed++);
      const std::vector<float> dyf = dy.to_f32();
      std::vector<double> want, mag;
      exact_input_gradient(wp, dyf, g, cout, nb, want, mag);
      const auto check = [&](const uint16_t* dx, const char* what) {
        const std::vector<float> got = download_nchw(dx, {nb, g.cin, hw});
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_LE(std::fabs(got[i] - want[i]), std::ldexp(std::fabs(want[i]), -8) + 2e-5 * mag[i] + 1e-30)
              << what << " at " << i << ": " << got[i] << " against " << want[i];
        }
      };

      std::unique_ptr<DevBuf> ddy(upload_nhwc(dy, {nb, cout, ohw}));
      DevBuf w32(w.size() * 4), wdense(w.size() * 2);
      cudaMemcpy(w32.p, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
      const int64_t ldt = cuda::padded_len(kk * cout), q = nb * hw, P = nb * ohw;
      DevBuf trows(q * ldt * 2), acc(P * kdim * 4), dyp(P * cuda::padded_len(cout) * 2), dxt(q * g.cin * 2),
          dxc(q * g.cin * 2);
      cuda::dgrad_rows_nhwc(ddy->as<uint16_t>(), g, cout, nb, trows.as<uint16_t>(), ldt, 0);
      if (nm.dense()) {
        std::vector<uint16_t> wb(w.size());
        for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16_bits(w[i]);
        cudaMemcpy(wdense.p, wb.data(), wb.size() * 2, cudaMemcpyHostToDevice);
        DevBuf wt(w.size() * 2);
        cuda::dgrad_dense(wdense.as<uint16_t>(), g, cout, wt.as<uint16_t>(), 0);
        blas.ff(wt.as<uint16_t>(), g.cin, kk * cout, trows.as<uint16_t>(), ldt, q, dxt.p, true, g.cin);
        blas.bp(wdense.as<uint16_t>(), cout, kdim, ddy->as<uint16_t>(), cout, P, acc.p, false, kdim);
        cuda::col2im_nhwc(acc.as<float>(), kdim, g, nb, dxc.as<uint16_t>(), 0);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        check(dxt.as<uint16_t>(), "transposed, cuBLAS");
        check(dxc.as<uint16_t>(), "col2im, cuBLAS");
        continue;
      }
      const DgradForms forms(w32.as<float>(), cout, g, nm);
      const cuda::DevNM &bwd = forms.bwd, &wt = forms.wt;
      ASSERT_EQ(cuda::dgrad_form_unusable(bwd, g), "");
      const int64_t ldy = cuda::padded_len(cout);
      cuda::pad_rows(ddy->as<uint16_t>(), P, cout, dyp.as<uint16_t>(), ldy, 0);
      cuda::spmm(bwd, dyp.as<uint16_t>(), ldy, P, acc.p, false, kdim);
      cuda::col2im_nhwc(acc.as<float>(), kdim, g, nb, dxc.as<uint16_t>(), 0);
      std::vector<cuda::SpmmKernel> kernels = {cuda::SpmmKernel::automatic, cuda::SpmmKernel::general};
      if (cuda::sp24_eligible(nm)) kernels.push_back(cuda::SpmmKernel::sp24);
      for (const cuda::SpmmKernel kern : kernels) {
        cudaMemset(dxt.p, 0xFF, q * g.cin * 2);
        cuda::spmm(wt, trows.as<uint16_t>(), ldt, q, dxt.p, true, g.cin, kern);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        check(dxt.as<uint16_t>(), cuda::spmm_kernel_name(kern));
      }
      check(dxc.as<uint16_t>(), "col2im");
    }
  }
}

// The implicit transposed BP (spmm_implicit: dY read through the copy engine's im2col boxes, no
// rows written) against the same product over dY's lowered rows (dgrad_rows_nhwc, checked against
// the host above): the same kernel, K order and tile give the same bits. Output tiles that cross
// images (4x4 and 8x8 maps), a last tile past the end, padding 0 (an output larger than dY), a 5x5
// kernel, every CTA tile; the outputs poisoned first. Then the refusals, by name.
TEST(CudaLayers, ImplicitTransposedBpGivesTheLoweredRowsBits) {
  SAT_REQUIRE_GPU();
  struct Case {
    ConvGeometry g;
    int64_t cout, nb;
  };
  const std::vector<Case> cases = {{{64, 8, 8, 3, 1, 1, 8, 8}, 64, 3},     {{128, 4, 4, 3, 1, 1, 4, 4}, 128, 21},
                                   {{32, 7, 7, 3, 1, 0, 5, 5}, 64, 2},     {{16, 6, 6, 5, 1, 2, 6, 6}, 64, 2},
                                   {{64, 32, 32, 3, 1, 1, 32, 32}, 128, 2}, {{256, 8, 8, 3, 1, 1, 8, 8}, 256, 5}};
  uint64_t seed = 900;
  for (const Case& cs : cases) {
    for (const NM nm : {NM{2, 8}, NM{1, 8}}) {
      const ConvGeometry& g = cs.g;
      const int64_t cout = cs.cout, nb = cs.nb, kdim = g.kdim(), kk = g.k * g.k, q = nb * g.h * g.w;
      SCOPED_TRACE("cin " + std::to_string(g.cin) + " cout " + std::to_string(cout) + " k " + std::to_string(g.k) +
                   " p " + std::to_string(g.p) + " " + std::to_string(g.h) + "x" + std::to_string(g.w) + " batch " +
                   std::to_string(nb) + " " + nm.str());
      const std::vector<float> w = test::randn(static_cast<size_t>(cout * kdim), seed++, true);
      DevBuf w32(w.size() * 4);
      cudaMemcpy(w32.p, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
      const DgradForms forms(w32.as<float>(), cout, g, nm);
      const cuda::DevNM& wt = forms.wt;
      std::unique_ptr<DevBuf> ddy(upload_nhwc(rand_tensor({nb, cout, g.oh, g.ow}, seed++), {nb, cout, g.oh * g.ow}));
      const cuda::ImplicitConv ic = cuda::dgrad_implicit(g, cout, nb);
      const std::string why = cuda::implicit_unusable(wt, ddy->as<uint16_t>(), ic);
      if (why.find("compute capability") != std::string::npos) GTEST_SKIP() << why;
      ASSERT_EQ(why, "");
      const int64_t ldt = cuda::padded_len(kk * cout);
      DevBuf trows(q * ldt * 2), ref(q * g.cin * 2), got(q * g.cin * 2);
      cuda::dgrad_rows_nhwc(ddy->as<uint16_t>(), g, cout, nb, trows.as<uint16_t>(), ldt, 0);
      for (const char* tile : {"", "128x128", "128x256", "256x128", "64x256"}) {
        SCOPED_TRACE(std::string("CTA tile ") + (*tile ? tile : "(picked)"));
        if (*tile) setenv("SAT_WGMMA_TILE", tile, 1);
        cuda::spmm(wt, trows.as<uint16_t>(), ldt, q, ref.p, true, g.cin, cuda::SpmmKernel::wgmma);
        ASSERT_EQ(cudaMemset(got.p, 0xFF, q * g.cin * 2), cudaSuccess);
        cuda::spmm_implicit(wt, ddy->as<uint16_t>(), ic, got.as<uint16_t>(), g.cin);
        unsetenv("SAT_WGMMA_TILE");
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<uint16_t> r(static_cast<size_t>(q * g.cin)), o(r.size());
        cudaMemcpy(r.data(), ref.p, r.size() * 2, cudaMemcpyDeviceToHost);
        cudaMemcpy(o.data(), got.p, o.size() * 2, cudaMemcpyDeviceToHost);
        int64_t differ = 0, first = -1;
        for (size_t i = 0; i < r.size(); ++i) {
          if (r[i] != o[i] && differ++ == 0) first = static_cast<int64_t>(i);
        }
        ASSERT_EQ(differ, 0) << "of " << r.size() << " outputs differ (or were never written); the first at position "
                             << first / g.cin << ", channel " << first % g.cin << ": " << o[first] << " against "
                             << r[first];
      }
    }
  }
  // Refusals, by name: channels not a multiple of 64, a window corner past the im2col map's range,
  // a form of another length, an unaligned image.
  const ConvGeometry g{64, 8, 8, 3, 1, 1, 8, 8};
  cuda::DevNM bwd = cuda::alloc_devnm(64, g.kdim(), NM{2, 8}, Axis::Cout, true);
  cuda::DevNM wt = cuda::alloc_dgrad_form(bwd, g);
  DevBuf img(2 * 8 * 8 * 64 * 2 + 16);
  cuda::ImplicitConv ic = cuda::dgrad_implicit(g, 64, 2);
  if (cuda::implicit_unusable(wt, img.as<uint16_t>(), ic).find("compute capability") == std::string::npos) {
    cuda::ImplicitConv bad = ic;
    bad.ch = 72;
    EXPECT_NE(cuda::implicit_unusable(wt, img.as<uint16_t>(), bad).find("not a multiple of 64"), std::string::npos);
    bad = ic;
    bad.oh = 400;   // the window's last corner 390 rows below the image: past an im2col map's range
    EXPECT_NE(cuda::implicit_unusable(wt, img.as<uint16_t>(), bad).find("im2col tensor map"), std::string::npos);
    bad = ic;
    bad.k = 1;
    bad.pad = 0;
    EXPECT_NE(cuda::implicit_unusable(wt, img.as<uint16_t>(), bad).find("line length"), std::string::npos);
    EXPECT_NE(cuda::implicit_unusable(wt, img.as<uint16_t>() + 1, ic).find("16-byte"), std::string::npos);
    try {
      DevBuf out(2 * 8 * 8 * 64 * 2);
      cuda::spmm_implicit(wt, img.as<uint16_t>() + 1, ic, out.as<uint16_t>(), 64);
      ADD_FAILURE() << "an unaligned image was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("spmm_implicit"), std::string::npos) << e.what();
    }
  }
  cuda::free_devnm(wt);
  cuda::free_devnm(bwd);
}

// Strided BP through the dilated dY (dilate_nhwc, then spmm_implicit with W'): the input gradient
// of stride-2 and stride-3 convolutions, 3x3 and the 1x1 shortcut, padding 1 and 0 (rows and
// columns past the last window's reach), against the host's sum in double over the pruned BF16 W_B
// and the BF16 dY, within the transposed test's bound (one BF16 rounding of an FP32 sum).
TEST(CudaLayers, StridedConvBpThroughTheDilatedDyMatchesTheInputGradient) {
  SAT_REQUIRE_GPU();
  struct Case {
    ConvGeometry g;
    int64_t cout;
  };
  const std::vector<Case> cases = {{{64, 32, 32, 3, 2, 1, 16, 16}, 128}, {{128, 8, 8, 3, 2, 1, 4, 4}, 256},
                                   {{64, 7, 7, 3, 2, 0, 3, 3}, 64},      {{64, 8, 8, 1, 2, 0, 4, 4}, 128},
                                   {{32, 9, 9, 3, 3, 1, 3, 3}, 64}};
  const int64_t nb = 3;
  uint64_t seed = 1300;
  for (const Case& cs : cases) {
    const ConvGeometry& g = cs.g;
    const int64_t cout = cs.cout, kdim = g.kdim(), hw = g.h * g.w, ohw = g.oh * g.ow;
    const NM nm{2, 8};
    SCOPED_TRACE("cin " + std::to_string(g.cin) + " cout " + std::to_string(cout) + " k " + std::to_string(g.k) +
                 " s " + std::to_string(g.s) + " p " + std::to_string(g.p) + " " + std::to_string(g.h) + "x" +
                 std::to_string(g.w));
    ASSERT_TRUE(cuda::strided_dgrad_applies(g));
    const std::vector<float> w = test::randn(static_cast<size_t>(cout * kdim), seed++, true);
    std::vector<float> wp(w.size());
    nm_decompress(nm_compress(w.data(), cout, kdim, nm, Axis::Cout), wp.data());
    const Tensor dy = rand_tensor({nb, cout, g.oh, g.ow}, seed++);
    const std::vector<float> dyf = dy.to_f32();
    std::vector<double> want, mag;
    exact_input_gradient(wp, dyf, g, cout, nb, want, mag);
    DevBuf w32(w.size() * 4);
    cudaMemcpy(w32.p, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
    const DgradForms forms(w32.as<float>(), cout, g, nm);
    const cuda::DevNM& wt = forms.wt;
    std::unique_ptr<DevBuf> ddy(upload_nhwc(dy, {nb, cout, ohw}));
    const cuda::ImplicitConv ic = cuda::dgrad_implicit(g, cout, nb);
    DevBuf dil(ic.nb * ic.ih * ic.iw * ic.ch * 2), dx(nb * hw * g.cin * 2);
    ASSERT_EQ(cudaMemset(dil.p, 0xFF, ic.nb * ic.ih * ic.iw * ic.ch * 2), cudaSuccess);   // every element written
    cuda::dilate_nhwc(ddy->as<uint16_t>(), g, cout, nb, dil.as<uint16_t>(), 0);
    const std::string why = cuda::implicit_unusable(wt, dil.as<uint16_t>(), ic);
    if (why.find("compute capability") != std::string::npos) GTEST_SKIP() << why;
    ASSERT_EQ(why, "");
    for (const char* tile : {"", "128x256", "64x256"}) {
      SCOPED_TRACE(std::string("CTA tile ") + (*tile ? tile : "(picked)"));
      if (*tile) setenv("SAT_WGMMA_TILE", tile, 1);
      ASSERT_EQ(cudaMemset(dx.p, 0xFF, nb * hw * g.cin * 2), cudaSuccess);
      cuda::spmm_implicit(wt, dil.as<uint16_t>(), ic, dx.as<uint16_t>(), g.cin);
      unsetenv("SAT_WGMMA_TILE");
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> got = download_nchw(dx.as<uint16_t>(), {nb, g.cin, hw});
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_LE(std::fabs(got[i] - want[i]), std::ldexp(std::fabs(want[i]), -8) + 2e-5 * mag[i] + 1e-30)
            << "at " << i << ": " << got[i] << " against " << want[i];
      }
    }
  }
}

// BatchNorm2d in training mode: output, input gradient, parameter gradients and running statistics;
// then inference with the updated running statistics.
static void check_batchnorm(const Shape& in) {
  const int64_t nb = 7, c = in[0], hw = in[1] * in[2], rows = nb * hw;
  Model m = one_layer(R"({"type": "batchnorm2d", "momentum": 0.2})", in);
  Layer& l = *m.layers[0];
  std::vector<Param*> ps;
  l.params(ps);
  // Non-trivial gamma and beta.
  for (int64_t j = 0; j < c; ++j) {
    ps[0]->value[j] = 0.5f + 0.05f * static_cast<float>(j);
    ps[1]->value[j] = -0.3f + 0.02f * static_cast<float>(j);
  }
  std::vector<std::vector<float>> p0;
  for (Param* p : ps) p0.push_back(p->value);
  for (Param* p : ps) p->grad.assign(p->value.size(), 0.0f);
  std::vector<float> xv = test::randn(static_cast<size_t>(nb * c * hw), 21);
  for (float& v : xv) v = 3.0f + 2.0f * v;   // a mean far from zero
  const Tensor x = Tensor::from_f32({nb, c, in[1], in[2]}, xv);
  const Tensor dy = rand_tensor({nb, c, in[1], in[2]}, 22);
  StepContext ctx{Method::dense, true};
  const Tensor y = l.forward(x, ctx);
  const Tensor dx = l.backward(dy, ctx);

  const Img g{nb, c, hw};
  std::unique_ptr<DevBuf> X(upload_nhwc(x, g)), DY(upload_nhwc(dy, g));
  DevBuf Y(rows * c * 2), DX(rows * c * 2), Y2(rows * c * 2);
  DevBuf P(4 * c * 4), G(2 * c * 4), stats(2 * c * 8), part(cuda::column_partials(rows, c) * 8);
  float* pv = P.as<float>();
  for (int i = 0; i < 4; ++i) cudaMemcpy(pv + i * c, p0[i].data(), c * 4, cudaMemcpyHostToDevice);
  double* st = stats.as<double>();
  cuda::bn_forward_train(X->as<uint16_t>(), rows, c, 1e-5, 0.2, pv, pv + c, pv + 2 * c, pv + 3 * c, st, st + c,
                         part.as<double>(), Y.as<uint16_t>(), 0);
  cuda::bn_backward(X->as<uint16_t>(), DY->as<uint16_t>(), rows, c, st, st + c, pv, G.as<float>(), G.as<float>() + c,
                    part.as<double>(), DX.as<uint16_t>(), 0);
  cuda::bn_forward_eval(X->as<uint16_t>(), rows, c, 1e-5, pv, pv + c, pv + 2 * c, pv + 3 * c, Y2.as<uint16_t>(), 0);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const double ulp = 1.0 / 128;
  expect_close(download_nchw(Y.as<uint16_t>(), g), y, ulp, "forward");
  // dx is a difference of nearly equal terms: relative to its largest element.
  {
    const std::vector<float> got = download_nchw(DX.as<uint16_t>(), g), want = dx.to_f32();
    float mx = 0;
    for (float v : want) mx = std::max(mx, std::fabs(v));
    for (size_t i = 0; i < want.size(); ++i) ASSERT_LE(std::fabs(got[i] - want[i]), ulp * mx) << "backward at " << i;
  }
  std::vector<float> gg(2 * c), run(2 * c);
  cudaMemcpy(gg.data(), G.p, 2 * c * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(run.data(), pv + 2 * c, 2 * c * 4, cudaMemcpyDeviceToHost);
  for (int64_t j = 0; j < c; ++j) {
    EXPECT_NEAR(gg[j], ps[0]->grad[j], 1e-4 * std::max(1.0f, std::fabs(ps[0]->grad[j]))) << "gamma grad " << j;
    EXPECT_NEAR(gg[c + j], ps[1]->grad[j], 1e-4 * std::max(1.0f, std::fabs(ps[1]->grad[j]))) << "beta grad " << j;
    EXPECT_NEAR(run[j], ps[2]->value[j], 1e-5 * std::max(1.0f, std::fabs(ps[2]->value[j]))) << "running mean " << j;
    EXPECT_NEAR(run[c + j], ps[3]->value[j], 1e-5 * std::max(1.0f, std::fabs(ps[3]->value[j]))) << "running var " << j;
  }
  const Tensor y2 = l.forward(x, StepContext{Method::dense, false});
  expect_close(download_nchw(Y2.as<uint16_t>(), g), y2, ulp, "inference");
  if (cuda::cudnn_built()) {
    // cuDNN's BatchNorm (SAT_CUDA_BN=cudnn), which sums in its own order and precision: within two
    // BF16 roundings of the CPU, parameter gradients within 1e-3, running statistics within 1e-4.
    SCOPED_TRACE("cuDNN");
    DevBuf Pc(4 * c * 4), Gc(2 * c * 4), saved(2 * c * 4), Yc(rows * c * 2), DXc(rows * c * 2), Ec(rows * c * 2);
    float* pc = Pc.as<float>();
    for (int i = 0; i < 4; ++i) cudaMemcpy(pc + i * c, p0[i].data(), c * 4, cudaMemcpyHostToDevice);
    cuda::CudnnBatchNorm bn(rows, c, 1e-5);
    bn.forward_train(X->as<uint16_t>(), Yc.as<uint16_t>(), pc, pc + c, 0.2, pc + 2 * c, pc + 3 * c, saved.as<float>(),
                     saved.as<float>() + c, 0);
    bn.backward(X->as<uint16_t>(), DY->as<uint16_t>(), DXc.as<uint16_t>(), pc, Gc.as<float>(), Gc.as<float>() + c,
                saved.as<float>(), saved.as<float>() + c, 0);
    bn.forward_eval(X->as<uint16_t>(), Ec.as<uint16_t>(), pc, pc + c, pc + 2 * c, pc + 3 * c, 0);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_close(download_nchw(Yc.as<uint16_t>(), g), y, 2 * ulp, "forward");
    const std::vector<float> got = download_nchw(DXc.as<uint16_t>(), g), want = dx.to_f32();
    float mx = 0;
    for (float v : want) mx = std::max(mx, std::fabs(v));
    for (size_t i = 0; i < want.size(); ++i) ASSERT_LE(std::fabs(got[i] - want[i]), 2 * ulp * mx) << "backward at " << i;
    std::vector<float> gc(2 * c), rc(2 * c);
    cudaMemcpy(gc.data(), Gc.p, 2 * c * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(rc.data(), pc + 2 * c, 2 * c * 4, cudaMemcpyDeviceToHost);
    for (int64_t j = 0; j < c; ++j) {
      EXPECT_NEAR(gc[j], ps[0]->grad[j], 1e-3 * std::max(1.0f, std::fabs(ps[0]->grad[j]))) << "gamma grad " << j;
      EXPECT_NEAR(gc[c + j], ps[1]->grad[j], 1e-3 * std::max(1.0f, std::fabs(ps[1]->grad[j]))) << "beta grad " << j;
      EXPECT_NEAR(rc[j], ps[2]->value[j], 1e-4 * std::max(1.0f, std::fabs(ps[2]->value[j]))) << "running mean " << j;
      EXPECT_NEAR(rc[c + j], ps[3]->value[j], 1e-4 * std::max(1.0f, std::fabs(ps[3]->value[j]))) << "running var " << j;
    }
    expect_close(download_nchw(Ec.as<uint16_t>(), g), y2, 2 * ulp, "inference");
  }
  if (!cuda::bn_relu_fusable(rows, c, X->p, Y.p)) return;
  // BatchNorm with the ReLU after it fused: the same bits as the two layers' kernels one after the
  // other, forward, backward, parameter gradients and inference.
  const int64_t n = rows * c;
  DevBuf Pa(4 * c * 4), Pb(4 * c * 4), Ga(2 * c * 4), Gb(2 * c * 4), Ya(n * 2), Ra(n * 2), DRa(n * 2), DXa(n * 2),
      Yb(n * 2), DXb(n * 2), Ea(n * 2), ERa(n * 2), Eb(n * 2);
  for (int i = 0; i < 4; ++i) {
    cudaMemcpy(Pa.as<float>() + i * c, p0[i].data(), c * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(Pb.as<float>() + i * c, p0[i].data(), c * 4, cudaMemcpyHostToDevice);
  }
  const float *pa = Pa.as<float>(), *pb = Pb.as<float>();
  cuda::bn_forward_train(X->as<uint16_t>(), rows, c, 1e-5, 0.2, pa, pa + c, Pa.as<float>() + 2 * c,
                         Pa.as<float>() + 3 * c, st, st + c, part.as<double>(), Ya.as<uint16_t>(), 0);
  cuda::relu_forward(Ya.as<uint16_t>(), n, Ra.as<uint16_t>(), 0);
  cuda::relu_backward(Ra.as<uint16_t>(), DY->as<uint16_t>(), n, DRa.as<uint16_t>(), 0);
  cuda::bn_backward(X->as<uint16_t>(), DRa.as<uint16_t>(), rows, c, st, st + c, pa, Ga.as<float>(), Ga.as<float>() + c,
                    part.as<double>(), DXa.as<uint16_t>(), 0);
  cuda::bn_forward_eval(X->as<uint16_t>(), rows, c, 1e-5, pa, pa + c, pa + 2 * c, pa + 3 * c, Ea.as<uint16_t>(), 0);
  cuda::relu_forward(Ea.as<uint16_t>(), n, ERa.as<uint16_t>(), 0);
  cuda::bn_forward_train(X->as<uint16_t>(), rows, c, 1e-5, 0.2, pb, pb + c, Pb.as<float>() + 2 * c,
                         Pb.as<float>() + 3 * c, st, st + c, part.as<double>(), Yb.as<uint16_t>(), 0, true);
  cuda::bn_backward(X->as<uint16_t>(), DY->as<uint16_t>(), rows, c, st, st + c, pb, Gb.as<float>(), Gb.as<float>() + c,
                    part.as<double>(), DXb.as<uint16_t>(), 0, Yb.as<uint16_t>());
  cuda::bn_forward_eval(X->as<uint16_t>(), rows, c, 1e-5, pb, pb + c, pb + 2 * c, pb + 3 * c, Eb.as<uint16_t>(), 0, true);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto same_bits = [](const DevBuf& a, const DevBuf& b, size_t bytes, const char* what) {
    std::vector<uint8_t> ha(bytes), hb(bytes);
    cudaMemcpy(ha.data(), a.p, bytes, cudaMemcpyDeviceToHost);
    cudaMemcpy(hb.data(), b.p, bytes, cudaMemcpyDeviceToHost);
    EXPECT_EQ(ha, hb) << what;
  };
  const std::vector<float> relu_out = download_rows(Ra.as<uint16_t>(), n);
  EXPECT_GT(std::count(relu_out.begin(), relu_out.end(), 0.0f), n / 10) << "the ReLU should clear a good part";
  same_bits(Ra, Yb, n * 2, "fused forward");
  same_bits(DXa, DXb, n * 2, "fused backward");
  same_bits(Ga, Gb, 2 * c * 4, "fused parameter gradients");
  same_bits(Pa, Pb, 4 * c * 4, "fused running statistics");
  same_bits(ERa, Eb, n * 2, "fused inference");
}

TEST(CudaLayers, BatchNormMatchesCpu) {
  SAT_REQUIRE_GPU();
  // channels a multiple of 8: eight per thread (16-byte kernels; 512: two column blocks); even: two per
  // thread; odd: one. 64 @ 32x32: a hundred row chunks for the finishing sums, and the channel grid
  // of the 16-byte kernels with rows left over
  for (const Shape& in : {Shape{40, 6, 5}, Shape{512, 4, 4}, Shape{64, 9, 7}, Shape{64, 32, 32}, Shape{18, 6, 5}, Shape{7, 5, 3}}) {
    SCOPED_TRACE(shape_str(in));
    check_batchnorm(in);
  }
}

// The GPU-resident step of models built from every supported layer type (biases, a linear input
// that is not a multiple of 64, overlapping pools, average pooling, a residual with a shortcut and
// one without, global pooling, flatten of a spatial map) against the CPU backend, for every method:
// loss, parameters and update within the harness's tolerances, masks exact, evaluation after the
// step.
TEST(CudaLayers, ResidentStepOfEveryLayerTypeMatchesCpu) {
  SAT_REQUIRE_GPU();
  const std::string cnn = R"({"name": "mix", "input": [3, 12, 10], "classes": 10, "nm": "2:8",
    "layers": [
      {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm2d"},
      {"type": "relu"},
      {"type": "residual", "body": [
        {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1, "bias": false},
        {"type": "batchnorm2d"}, {"type": "relu"},
        {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1, "bias": false}]},
      {"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1},
      {"type": "residual", "body": [
        {"type": "conv2d", "out": 32, "kernel": 3, "stride": 2, "padding": 1}, {"type": "relu"}],
       "shortcut": [{"type": "conv2d", "out": 32, "kernel": 1, "stride": 2}]},
      {"type": "avgpool2d", "kernel": 2, "stride": 1},
      {"type": "flatten"},
      {"type": "linear", "out": 40},
      {"type": "relu"},
      {"type": "linear", "out": 10}]})";
  const std::string gap = R"({"name": "gap", "input": [8, 6, 6], "classes": 10, "nm": "2:8",
    "layers": [
      {"type": "conv2d", "out": 64, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm2d"}, {"type": "relu"},
      {"type": "global_avgpool"},
      {"type": "linear", "out": 10}]})";
  // BatchNorm's tolerances (CudaBackend.TrainStepOfEveryModelMatchesCpu says why); values are
  // compared through their updates only, since BatchNorm's beta starts at zero and its first
  // values are rounding-sized.
  test::StepTolerance t;
  t.param_max = -1;
  t.update_norm = 0.35;
  t.update_cos = 0.9;
  t.evaluate = true;
  for (const Method method : {Method::bdwp, Method::srste, Method::dense}) {
    SCOPED_TRACE(method_name(method));
    test::expect_training_matches_cpu("cuda", cnn, method, 8, 2, t);
    test::expect_training_matches_cpu("cuda", gap, method, 8, 2, t);
  }
}

// The resident step of a small ViT with every transformer piece (a 3-channel patch embedding, so
// the input is permuted; widths that are not a multiple of 64, so inputs are padded; attention with
// and without biases, one and two heads; GELU in both forms) against the CPU backend, for every
// method, as ResidentStepOfEveryLayerTypeMatchesCpu. There is no BatchNorm here, but two things
// widen the bound of the models without it (5% of each parameter's step) to 10%, with cosine >=
// 0.98 kept: the attention's context enters the out projection as BF16 on the GPU and FP32 on
// the CPU, and after the first step the weights differ by rounding, so near-tied groups may keep
// other N:M masks (masks_exact is off). On the H100 the worst case was SR-STE's second step, 5.1%
// to 7.9% on the second attention block. And the key projection's bias has a zero gradient in
// exact arithmetic (a shift shared by a row's scores leaves the softmax unchanged): its step is
// rounding noise on both backends (0 on the CPU, up to 6e-7 on the GPU), hence the 2e-6 floor.
TEST(CudaLayers, ResidentStepOfTransformerLayersMatchesCpu) {
  SAT_REQUIRE_GPU();
  const std::string vit = R"({"name": "vit", "input": [3, 8, 12], "classes": 10, "nm": "2:8",
    "layers": [
      {"type": "patch_embed", "patch": 4, "dim": 48},
      {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 2}]},
      {"type": "residual", "body": [
        {"type": "layernorm"}, {"type": "linear", "out": 96}, {"type": "gelu"}, {"type": "linear", "out": 48}]},
      {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 1, "bias": false}]},
      {"type": "residual", "body": [
        {"type": "layernorm"}, {"type": "linear", "out": 64}, {"type": "gelu", "approximate": "tanh"},
        {"type": "linear", "out": 48}]},
      {"type": "layernorm"},
      {"type": "token_mean"},
      {"type": "linear", "out": 10}]})";
  test::StepTolerance t;
  t.param_max = -1;
  t.update_norm = 0.1;
  t.update_abs = 2e-6;
  t.update_cos = 0.98;
  t.masks_exact = false;
  t.evaluate = true;
  for (const Method method : {Method::bdwp, Method::srste, Method::dense}) {
    SCOPED_TRACE(method_name(method));
    test::expect_training_matches_cpu("cuda", vit, method, 8, 2, t);
  }
}

// The resident step's contract (docs/cuda.md): the host model is not touched by training steps,
// only by Backend::sync, which brings back the trained values and momenta and makes the host's
// weight forms those of the new values; an evaluation on the CPU then agrees with one on the GPU.
// A host-layer path would fail the first check (it copies the parameters back after every step).
TEST(CudaLayers, ResidentStateReachesTheHostOnlyAtSync) {
  SAT_REQUIRE_GPU();
  for (const char* name : {"lenet5", "mlp", "vit_tiny"}) {
    SCOPED_TRACE(name);
    Model m = test::load_test_model(name);
    const auto dev = open_backend("cuda"), cpu = open_backend("cpu");
    dev->prepare(m, Method::bdwp);
    std::vector<std::vector<float>> initial;
    for (Param* p : m.params()) initial.push_back(p->value);
    const int batch = 16;
    auto data = make_synthetic_source(m.input, m.classes, 2 * batch, 5);
    const UpdateConfig cfg{Method::bdwp, 0.05, 0.9, 5e-4, 2e-4};
    Tensor x;
    std::vector<int> y;
    for (int s = 0; s < 2; ++s) {
      std::vector<int64_t> idx(batch);
      for (int i = 0; i < batch; ++i) idx[i] = s * batch + i;
      data->batch(idx.data(), batch, x, y);
      dev->train_step(m, x, y, cfg);
    }
    std::vector<std::vector<float>> before_sync;
    for (Param* p : m.params()) before_sync.push_back(p->value);
    EXPECT_EQ(before_sync, initial) << "the host model changed before Backend::sync";
    dev->sync(m);
    size_t changed = 0;
    const auto ps = m.params();
    for (size_t i = 0; i < ps.size(); ++i) {
      if (!ps[i]->trainable) continue;
      changed += ps[i]->value != initial[i];
      EXPECT_EQ(ps[i]->momentum.size(), ps[i]->value.size()) << ps[i]->name;
    }
    EXPECT_GT(changed, 0u) << "Backend::sync brought no trained value back";
    for (SparseWeight* sw : m.sparse_weights()) {
      if (!sw->ff_sparse(Method::bdwp)) continue;
      const NMCompressed want = nm_compress(sw->weight->value.data(), sw->cout, sw->k, sw->nm, Axis::K);
      EXPECT_EQ(sw->fwd.index, want.index) << "host W_F of " << sw->weight->name << " not selected from the synced values";
    }
    const StepResult ec = cpu->evaluate(m, x, y, Method::bdwp), eg = dev->evaluate(m, x, y, Method::bdwp);
    EXPECT_NEAR(eg.loss, ec.loss, 0.02 * std::max(1.0f, std::fabs(ec.loss)));
  }
}

#endif  // SAT_CUDA_BUILT
