// The N:M products of a convolution on its images (cpu::spmm_nm_conv_ff / spmm_nm_conv_bp) must
// give the bits of the lowered products they replace, spmm_nm over im2col and col2im of spmm_nm,
// on every SIMD path the machine has and at 1 and 3 threads, over shapes that exercise padding,
// stride, ragged column panels, several K-chunks, partial register blocks and tiny batches. The
// lowering here is this file's own (a plain loop over the definition in sat/conv_geometry.hpp),
// and the product is spmm_nm_reference, so the library's im2col and tiling are not the oracle.
// Then the same at the layer and the training-step level, against the lowered path kept behind
// cpu::force_conv_lowering; and the dense WU on the images (cpu::conv_wu) against its order
// written out.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sat/backend.hpp"
#include "sat/cpu_kernels.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"

using namespace sat;

namespace {

std::vector<std::string> simd_paths() {
  std::vector<std::string> out;
  std::stringstream list(cpu::simd_paths_available());
  std::string p;
  while (std::getline(list, p, ',')) out.push_back(p.substr(p.find_first_not_of(' ')));
  return out;
}

// Lifts every restriction at the end of a test, whatever it asserted.
struct Restore {
  int threads = omp_get_max_threads();
  ~Restore() {
    cpu::force_simd_path("best");
    cpu::force_conv_lowering(false);
    omp_set_num_threads(threads);
  }
};

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Index of the first element whose bits differ, or -1.
int64_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<int64_t>(std::min(a.size(), b.size()));
}

struct Case {
  int64_t nb, cin, h, w, k, s, p, cout;
  NM nm;
  ConvGeometry geometry() const {
    return {cin, h, w, k, s, p, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1};
  }
  std::string str() const {
    std::ostringstream o;
    o << nb << "x" << cin << "x" << h << "x" << w << " k" << k << " s" << s << " p" << p << " -> "
      << cout << " " << nm.str();
    return o.str();
  }
};

// K = cin*k*k and Cout divide by M in every case (the forward form prunes along K, the backward
// form along Cout).
const std::vector<Case> kCases = {
    {5, 32, 14, 14, 3, 1, 1, 64, {2, 8}},    // LeNet-5's conv2; several K-chunks of 16 groups
    {3, 4, 9, 7, 3, 2, 1, 16, {1, 4}},       // odd sizes, stride 2
    {7, 16, 5, 5, 1, 1, 0, 16, {1, 16}},     // pointwise, one group per line
    {2, 8, 11, 13, 5, 1, 2, 8, {2, 4}},      // 5x5 window, padding 2
    {4, 2, 6, 6, 4, 3, 3, 24, {2, 8}},       // padding wider than the stride, 3x3 output
    {3, 16, 3, 3, 3, 1, 0, 8, {4, 8}},       // one output position per image
    {1, 8, 10, 10, 3, 1, 1, 32, {2, 8}},     // one image: fewer tiles than threads
    {6, 32, 8, 8, 3, 1, 1, 32, {1, 16}},     // M = 16, several K-chunks
    {2, 12, 17, 9, 2, 2, 0, 12, {3, 4}},     // even window, no padding, N not a power of two
    {9, 16, 4, 4, 3, 1, 1, 48, {2, 8}},      // 16 positions per image: panels cross images
};

// col[(c, ky, kx)][b*oh*ow + oy*ow + ox] = x[b][c][oy*s - p + ky][ox*s - p + kx], 0 outside.
std::vector<float> lower(const Case& c, const std::vector<float>& x) {
  const ConvGeometry g = c.geometry();
  const int64_t cols = c.nb * g.oh * g.ow;
  std::vector<float> col(static_cast<size_t>(g.kdim() * cols), 0.0f);
  for (int64_t ch = 0; ch < c.cin; ++ch)
    for (int64_t ky = 0; ky < c.k; ++ky)
      for (int64_t kx = 0; kx < c.k; ++kx)
        for (int64_t b = 0; b < c.nb; ++b)
          for (int64_t oy = 0; oy < g.oh; ++oy)
            for (int64_t ox = 0; ox < g.ow; ++ox) {
              const int64_t iy = oy * c.s - c.p + ky, ix = ox * c.s - c.p + kx;
              if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
              col[((ch * c.k + ky) * c.k + kx) * cols + (b * g.oh + oy) * g.ow + ox] =
                  x[((b * c.cin + ch) * c.h + iy) * c.w + ix];
            }
  return col;
}

// The adjoint, in the order the layer has always summed: every pixel from +0.0f, its entries
// added in (ky, kx) order.
std::vector<float> scatter(const Case& c, const std::vector<float>& dcol) {
  const ConvGeometry g = c.geometry();
  const int64_t cols = c.nb * g.oh * g.ow;
  std::vector<float> dx(static_cast<size_t>(c.nb * c.cin * c.h * c.w), 0.0f);
  for (int64_t ch = 0; ch < c.cin; ++ch)
    for (int64_t b = 0; b < c.nb; ++b)
      for (int64_t ky = 0; ky < c.k; ++ky)
        for (int64_t kx = 0; kx < c.k; ++kx)
          for (int64_t oy = 0; oy < g.oh; ++oy)
            for (int64_t ox = 0; ox < g.ow; ++ox) {
              const int64_t iy = oy * c.s - c.p + ky, ix = ox * c.s - c.p + kx;
              if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
              dx[((b * c.cin + ch) * c.h + iy) * c.w + ix] +=
                  dcol[((ch * c.k + ky) * c.k + kx) * cols + (b * g.oh + oy) * g.ow + ox];
            }
  return dx;
}

struct Expected {
  std::vector<float> y, dx;
};

// The lowered products, computed once per case by the plain reference.
Expected expected(const Case& c, const NMCompressed& wf, const NMCompressed& wb,
                  const std::vector<float>& x, const std::vector<float>& dyt) {
  const ConvGeometry g = c.geometry();
  const int64_t cols = c.nb * g.oh * g.ow;
  Expected e;
  e.y.resize(static_cast<size_t>(c.cout * cols));
  const std::vector<float> col = lower(c, x);
  cpu::spmm_nm_reference(wf, col.data(), cols, cols, e.y.data(), cols);
  std::vector<float> dcol(static_cast<size_t>(g.kdim() * cols));
  cpu::spmm_nm_reference(wb, dyt.data(), cols + 5, cols, dcol.data(), cols);
  e.dx = scatter(c, dcol);
  return e;
}

}  // namespace

TEST(ConvNm, ProductsOnTheImagesGiveTheLoweredBitsOnEveryPathAndThreadCount) {
  Restore restore;
  for (size_t i = 0; i < kCases.size(); ++i) {
    const Case& c = kCases[i];
    const ConvGeometry g = c.geometry();
    const int64_t cols = c.nb * g.oh * g.ow, ld = cols + 5;   // dyt's rows: not the width
    const auto w = random_vec(c.cout * g.kdim(), 10 + i);
    const NMCompressed wf = nm_compress(w.data(), c.cout, g.kdim(), c.nm, Axis::K);
    const NMCompressed wb = nm_compress(w.data(), c.cout, g.kdim(), c.nm, Axis::Cout);
    const auto x = random_vec(c.nb * c.cin * c.h * c.w, 20 + i);
    const auto dyt = random_vec(c.cout * ld, 30 + i);
    const Expected want = expected(c, wf, wb, x, dyt);
    for (const std::string& path : simd_paths()) {
      ASSERT_TRUE(cpu::force_simd_path(path)) << path;
      for (int threads : {1, 3}) {
        omp_set_num_threads(threads);
        const std::string where = c.str() + ", " + path + ", " + std::to_string(threads) + " threads";
        std::vector<float> xpad;
        cpu::conv_pad_images(g, x.data(), c.nb, xpad);
        std::vector<float> y = random_vec(c.cout * cols, 40);   // every element must be written
        cpu::spmm_nm_conv_ff(wf, g, xpad.data(), c.nb, y.data(), cols);
        EXPECT_TRUE(same_bits(y, want.y)) << "FF " << where << ": first difference at "
                                          << first_difference(y, want.y);
        std::vector<float> dx = random_vec(x.size(), 41);
        cpu::spmm_nm_conv_bp(wb, g, dyt.data(), ld, c.nb, dx.data());
        EXPECT_TRUE(same_bits(dx, want.dx)) << "BP " << where << ": first difference at "
                                            << first_difference(dx, want.dx);
      }
    }
  }
}

namespace {

// conv_wu's order, written out: per tile of conv_wu_images(g) images, one std::fma chain per
// weight over the tile's images and positions in order, from +0; the tiles' sums added to dw in
// image order.
std::vector<float> wu_reference(const Case& c, const std::vector<float>& x, const std::vector<float>& dy,
                                std::vector<float> dw) {
  const ConvGeometry g = c.geometry();
  const int64_t ohw = g.oh * g.ow, kdim = g.kdim(), n = c.cout * kdim;
  const std::vector<float> col = lower(c, x);
  const int64_t cols = c.nb * ohw, tile = cpu::conv_wu_images(g);
  std::vector<float> partial(static_cast<size_t>(n));
  for (int64_t b0 = 0; b0 < c.nb; b0 += tile) {
    std::fill(partial.begin(), partial.end(), 0.0f);
    for (int64_t b = b0; b < std::min(c.nb, b0 + tile); ++b)
      for (int64_t pos = 0; pos < ohw; ++pos)
        for (int64_t o = 0; o < c.cout; ++o)
          for (int64_t k = 0; k < kdim; ++k)
            partial[o * kdim + k] = std::fma(dy[(b * c.cout + o) * ohw + pos], col[k * cols + b * ohw + pos],
                                             partial[o * kdim + k]);
    for (int64_t i = 0; i < n; ++i) dw[i] += partial[i];
  }
  return dw;
}

}  // namespace

// WU, dense on the images: the order above on every path and thread count, accumulating into a
// gradient that is not zero.
TEST(ConvNm, WeightGradientOnTheImagesKeepsItsOrderOnEveryPathAndThreadCount) {
  Restore restore;
  for (size_t i = 0; i < kCases.size(); ++i) {
    const Case& c = kCases[i];
    const ConvGeometry g = c.geometry();
    const auto x = random_vec(c.nb * c.cin * c.h * c.w, 60 + i);
    const auto dy = random_vec(c.nb * c.cout * g.oh * g.ow, 70 + i);
    const auto dw0 = random_vec(c.cout * g.kdim(), 80 + i);
    const std::vector<float> want = wu_reference(c, x, dy, dw0);
    for (const std::string& path : simd_paths()) {
      ASSERT_TRUE(cpu::force_simd_path(path)) << path;
      for (int threads : {1, 3}) {
        omp_set_num_threads(threads);
        std::vector<float> xpad, dw = dw0;
        cpu::conv_pad_images(g, x.data(), c.nb, xpad);
        cpu::conv_wu(g, c.cout, xpad.data(), dy.data(), c.nb, dw.data());
        EXPECT_TRUE(same_bits(dw, want)) << "WU " << c.str() << ", " << path << ", " << threads
                                         << " threads: first difference at " << first_difference(dw, want);
      }
    }
  }
}

// The library's own lowering, kept for device backends and the SAT_CONV_LOWERED path, against
// this file's.
TEST(ConvNm, Im2colAndCol2imFollowTheLayout) {
  Restore restore;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    for (const Case& c : kCases) {
      const ConvGeometry g = c.geometry();
      const int64_t cols = c.nb * g.oh * g.ow;
      const auto x = random_vec(c.nb * c.cin * c.h * c.w, 7);
      std::vector<float> col(static_cast<size_t>(g.kdim() * cols), 1.0f);
      cpu::im2col(g, x.data(), c.nb, col.data(), cols);
      EXPECT_TRUE(same_bits(col, lower(c, x))) << "im2col " << c.str();
      const auto dcol = random_vec(g.kdim() * cols, 8);
      std::vector<float> dx(x.size(), 1.0f);
      cpu::col2im(g, dcol.data(), cols, c.nb, dx.data());
      EXPECT_TRUE(same_bits(dx, scatter(c, dcol))) << "col2im " << c.str();
    }
  }
}

TEST(ConvNm, RefusesTheWrongWeightForm) {
  const Case c = kCases[0];
  const ConvGeometry g = c.geometry();
  const auto w = random_vec(c.cout * g.kdim(), 1);
  const NMCompressed wf = nm_compress(w.data(), c.cout, g.kdim(), c.nm, Axis::K);
  const NMCompressed wb = nm_compress(w.data(), c.cout, g.kdim(), c.nm, Axis::Cout);
  std::vector<float> xpad, out(static_cast<size_t>(c.cout * c.nb * g.oh * g.ow));
  cpu::conv_pad_images(g, random_vec(c.nb * c.cin * c.h * c.w, 2).data(), c.nb, xpad);
  EXPECT_THROW(cpu::spmm_nm_conv_ff(wb, g, xpad.data(), c.nb, out.data(), 1), Error);
  EXPECT_THROW(cpu::spmm_nm_conv_bp(wf, g, out.data(), 1, c.nb, xpad.data()), Error);
}

namespace {

// A few BDWP training steps of a small convolutional model; returns every parameter, momentum
// buffer and the losses, as bits.
std::vector<float> train_steps(const std::string& model_json, int steps) {
  Model m = Model::from_json_text(model_json, "test");
  auto backend = open_backend("cpu");
  backend->prepare(m, Method::bdwp);
  const UpdateConfig cfg{Method::bdwp, 0.05, 0.9, 5e-4, 2e-4};
  std::vector<float> out;
  const int64_t batch = 6, per = numel(m.input);
  for (int s = 0; s < steps; ++s) {
    std::vector<float> x = random_vec(static_cast<size_t>(batch * per), 50 + s);
    std::vector<int> labels(batch);
    for (int64_t b = 0; b < batch; ++b) labels[b] = static_cast<int>((b * 7 + s) % m.classes);
    Shape shape = m.input;
    shape.insert(shape.begin(), batch);
    out.push_back(backend->train_step(m, Tensor::from_f32(shape, x), labels, cfg).loss);
  }
  for (Param* p : m.params()) {
    out.insert(out.end(), p->value.begin(), p->value.end());
    out.insert(out.end(), p->momentum.begin(), p->momentum.end());
  }
  return out;
}

}  // namespace

// The layer and the step: the same bits with the products on the images as with the batch
// lowered, on every path, at 1 and 3 threads.
TEST(ConvNm, TrainingStepsGiveTheLoweredPathsBits) {
  Restore restore;
  const std::string model = R"({"name": "t", "input": [3, 13, 11], "classes": 8, "nm": "2:8",
      "layers": [{"type": "conv2d", "out": 16, "kernel": 3, "padding": 1},
                 {"type": "relu"},
                 {"type": "conv2d", "out": 24, "kernel": 3, "stride": 2, "padding": 1},
                 {"type": "relu"},
                 {"type": "conv2d", "out": 16, "kernel": 2, "stride": 1, "padding": 0},
                 {"type": "flatten"},
                 {"type": "linear", "out": 8}]})";
  for (const std::string& path : simd_paths()) {
    ASSERT_TRUE(cpu::force_simd_path(path)) << path;
    for (int threads : {1, 3}) {
      omp_set_num_threads(threads);
      cpu::force_conv_lowering(true);
      const std::vector<float> lowered = train_steps(model, 3);
      cpu::force_conv_lowering(false);
      const std::vector<float> direct = train_steps(model, 3);
      EXPECT_TRUE(same_bits(direct, lowered)) << path << ", " << threads << " threads: first difference at "
                                              << first_difference(direct, lowered);
    }
  }
}
