// Multi-head self-attention over the tokens of a sample [T, D]:
//   Q, K, V = X Wq^T + bq, X Wk^T + bk, X Wv^T + bv;  per head h (dh = D / heads columns each)
//   O_h = softmax(Q_h K_h^T / sqrt(dh)) V_h;  Y = O Wo^T + bo.
// The four projections are weights [D][D] with their own N:M state and run through the BDWP
// products (weight_ops), so they are where the sparsity applies. The attention products Q K^T and
// A V multiply activations by activations and run dense, in FP32.
//
// Everything is kept feature-major ([D][P], P = batch * T, column b * T + t) because that is the
// layout the weight products take; a head's block of a sample is then the [dh][T] sub-matrix at
// row h * dh, column b * T, with leading dimension P, which sgemm reads in place.
#include <algorithm>
#include <array>
#include <cmath>

#include "sat/cpu_kernels.hpp"
#include "cpu/weight_ops.hpp"
#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

enum Proj { kQ, kK, kV, kO };
constexpr int kProjections = 4;
const char* const kProjName[kProjections] = {"q_proj", "k_proj", "v_proj", "out_proj"};

class Attention final : public Layer {
 public:
  Attention(int64_t heads, bool bias, NM nm) : heads_(heads), has_bias_(bias), nm_(nm) {}
  std::string type() const override { return "attention"; }
  nlohmann::json attrs() const override { return {{"heads", heads_}, {"bias", has_bias_}}; }

  Shape build(const Shape& in, Rng& rng) override {
    if (in.size() != 2) bad_input(*this, "[tokens, features]", in);
    if (in[1] % heads_ != 0) {
      bad_input(*this, "[tokens, features] with features divisible by heads (" +
                           std::to_string(heads_) + ")", in);
    }
    t_ = in[0];
    d_ = in[1];
    dh_ = d_ / heads_;
    for (int p = 0; p < kProjections; ++p) {
      const std::string prefix = name + "." + kProjName[p];
      weight_[p] = Param(prefix + ".weight", {d_, d_});
      init_weight(weight_[p], d_, rng);
      if (has_bias_) {
        bias_[p] = Param(prefix + ".bias", {d_}, true, false);
        init_bias(bias_[p], d_, rng);
      }
      setup_sparse(sw_[p], weight_[p], d_, d_, nm_);
    }
    return in;
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    const int64_t batch = x.dim(0), cols = batch * t_;
    const std::vector<float> xf = x.to_f32();
    std::vector<float> xt(xf.size());
    cpu::transpose(xf.data(), cols, d_, xt.data());
    std::vector<float> qt = project(kQ, xt, cols, ctx);
    std::vector<float> kt = project(kK, xt, cols, ctx);
    std::vector<float> vt = project(kV, xt, cols, ctx);

    const float scale = 1.0f / std::sqrt(static_cast<float>(dh_));
    std::vector<float> probs(static_cast<size_t>(batch * heads_ * t_ * t_));
    std::vector<float> ot(xt.size());
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads_; ++h) {
        const int64_t off = block(b, h, cols);
        float* a = &probs[static_cast<size_t>((b * heads_ + h) * t_ * t_)];
        cpu::sgemm(true, false, t_, t_, dh_, scale, &qt[off], cols, &kt[off], cols, 0.0f, a, t_);
        softmax_rows(a);
        cpu::sgemm(false, true, dh_, t_, t_, 1.0f, &vt[off], cols, a, t_, 0.0f, &ot[off], cols);
      }
    }

    const std::vector<float> yt = project(kO, ot, cols, ctx);
    std::vector<float> y(yt.size());
    cpu::transpose(yt.data(), d_, cols, y.data());
    if (ctx.training) {
      xt_ = std::move(xt);
      qt_ = std::move(qt);
      kt_ = std::move(kt);
      vt_ = std::move(vt);
      probs_ = std::move(probs);
      ot_ = std::move(ot);
    }
    return Tensor::from_f32(x.shape(), y);
  }

  Tensor backward(const Tensor& dy, const StepContext& ctx) override {
    const int64_t batch = dy.dim(0), cols = batch * t_;
    const std::vector<float> g = dy.to_f32();
    std::vector<float> gt(g.size());
    cpu::transpose(g.data(), cols, d_, gt.data());
    const std::vector<float> dot = project_back(kO, gt, ot_, cols, ctx);

    const float scale = 1.0f / std::sqrt(static_cast<float>(dh_));
    std::vector<float> dqt(gt.size()), dkt(gt.size()), dvt(gt.size());
    std::vector<float> ds(static_cast<size_t>(t_ * t_));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads_; ++h) {
        const int64_t off = block(b, h, cols);
        const float* a = &probs_[static_cast<size_t>((b * heads_ + h) * t_ * t_)];
        // dA = dO V^T and dV = A^T dO.
        cpu::sgemm(true, false, t_, t_, dh_, 1.0f, &dot[off], cols, &vt_[off], cols, 0.0f,
                   ds.data(), t_);
        cpu::sgemm(false, false, dh_, t_, t_, 1.0f, &dot[off], cols, a, t_, 0.0f, &dvt[off], cols);
        softmax_rows_backward(a, ds.data(), scale);
        // dQ = dS K and dK = dS^T Q, with dS = dL/d(Q K^T) (the score scale folded in).
        cpu::sgemm(false, true, dh_, t_, t_, 1.0f, &kt_[off], cols, ds.data(), t_, 0.0f,
                   &dqt[off], cols);
        cpu::sgemm(false, false, dh_, t_, t_, 1.0f, &qt_[off], cols, ds.data(), t_, 0.0f,
                   &dkt[off], cols);
      }
    }

    std::vector<float> dxt = project_back(kQ, dqt, xt_, cols, ctx);
    const std::vector<float> dxk = project_back(kK, dkt, xt_, cols, ctx);
    const std::vector<float> dxv = project_back(kV, dvt, xt_, cols, ctx);
    for (size_t i = 0; i < dxt.size(); ++i) dxt[i] += dxk[i] + dxv[i];
    std::vector<float> dx(dxt.size());
    cpu::transpose(dxt.data(), d_, cols, dx.data());
    return Tensor::from_f32(dy.shape(), dx);
  }

  void params(std::vector<Param*>& out) override {
    for (int p = 0; p < kProjections; ++p) {
      out.push_back(&weight_[p]);
      if (has_bias_) out.push_back(&bias_[p]);
    }
  }

  void sparse_weights(std::vector<SparseWeight*>& out) override {
    for (auto& sw : sw_) out.push_back(&sw);
  }

  // The four projections plus the two attention products (4 in BP: dA, dV, dQ, dK); the softmax's
  // element-wise work is not counted.
  void describe(std::vector<LayerInfo>& out, Method method) const override {
    LayerInfo info{name, type(), in_shape, out_shape};
    const double t = static_cast<double>(t_), d = static_cast<double>(d_);
    double ff = 0, bp = 0;
    for (const auto& sw : sw_) {
      ff += cpu::ff_macs_per_col(sw, method);
      bp += cpu::bp_macs_per_col(sw, method);
    }
    info.flops_ff = 2 * t * ff + 2 * (2 * t * t * d);
    info.flops_bp = 2 * t * bp + 2 * (4 * t * t * d);
    info.flops_wu = 2 * t * (kProjections * d * d);
    info.params = kProjections * (d_ * d_ + (has_bias_ ? d_ : 0));
    info.sparsity = sparsity_text(sw_[kQ], method);
    out.push_back(info);
  }

 private:
  // Offset of head h of sample b in a feature-major [D][cols] matrix.
  int64_t block(int64_t b, int64_t h, int64_t cols) const { return h * dh_ * cols + b * t_; }

  // Projection p of a feature-major input: W_p in + b_p, [D][cols].
  std::vector<float> project(int p, const std::vector<float>& in, int64_t cols, const StepContext& ctx) {
    std::vector<float> out(static_cast<size_t>(d_ * cols));
    cpu::ff_product(sw_[p], ctx, in.data(), cols, out.data());
    if (has_bias_) {
      for (int64_t r = 0; r < d_; ++r)
        for (int64_t c = 0; c < cols; ++c) out[r * cols + c] += bias_[p].value[r];
    }
    return out;
  }

  // Backward of projection p given its output gradient (feature-major) and its cached input:
  // accumulates the weight and bias gradients and returns the input gradient.
  std::vector<float> project_back(int p, const std::vector<float>& gt, const std::vector<float>& in,
                                  int64_t cols, const StepContext& ctx) {
    if (has_bias_) {
      for (int64_t r = 0; r < d_; ++r) {
        double s = 0;
        for (int64_t c = 0; c < cols; ++c) s += gt[r * cols + c];
        bias_[p].grad[r] += static_cast<float>(s);
      }
    }
    cpu::wu_product(sw_[p], ctx, gt.data(), in.data(), cols);
    std::vector<float> dxt(static_cast<size_t>(d_ * cols));
    cpu::bp_product(sw_[p], ctx, gt.data(), cols, dxt.data());
    return dxt;
  }

  void softmax_rows(float* a) const {
    for (int64_t r = 0; r < t_; ++r) {
      float* row = &a[r * t_];
      float mx = row[0];
      for (int64_t s = 1; s < t_; ++s) mx = std::max(mx, row[s]);
      double sum = 0;
      for (int64_t s = 0; s < t_; ++s) {
        row[s] = std::exp(row[s] - mx);
        sum += row[s];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t s = 0; s < t_; ++s) row[s] *= inv;
    }
  }

  // In place: da (dL/dA) becomes dL/d(Q K^T) = scale * A * (dA - rowsum(A * dA)).
  void softmax_rows_backward(const float* a, float* da, float scale) const {
    for (int64_t r = 0; r < t_; ++r) {
      const float* ar = &a[r * t_];
      float* dr = &da[r * t_];
      double dot = 0;
      for (int64_t s = 0; s < t_; ++s) dot += static_cast<double>(ar[s]) * dr[s];
      for (int64_t s = 0; s < t_; ++s) dr[s] = scale * ar[s] * (dr[s] - static_cast<float>(dot));
    }
  }

  int64_t heads_;
  bool has_bias_;
  NM nm_;
  int64_t t_ = 0, d_ = 0, dh_ = 0;
  std::array<Param, kProjections> weight_, bias_;
  std::array<SparseWeight, kProjections> sw_;
  // Cached for backward, all feature-major [D][P] except probs_ [batch][heads][T][T].
  std::vector<float> xt_, qt_, kt_, vt_, probs_, ot_;
};

}  // namespace

LayerPtr make_attention(const LayerSpec& spec) {
  spec.allow_only({"heads", "bias", "nm"});
  const int64_t heads = spec.get_int("heads");
  if (heads < 1) spec.fail("\"heads\" must be >= 1");
  return std::make_unique<Attention>(heads, spec.get_bool("bias", true), spec.nm());
}

}  // namespace sat::layers
