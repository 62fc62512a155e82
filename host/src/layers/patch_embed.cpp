// Patch embedding (the ViT stem): an image [C, H, W] is cut into non-overlapping patch x patch
// squares, taken in row-major order, and each flattened patch (K = C * patch * patch in (c, ph, pw)
// order, the order of a convolution weight) is projected to `dim` features by W[dim][K] + b; a
// learned position embedding [T][dim] is added to every token. Output [T, dim].
// W carries the layer's N:M sparsity and runs through the BDWP products.
#include <random>

#include "sat/cpu_kernels.hpp"
#include "cpu/weight_ops.hpp"
#include "layers/common.hpp"
#include "layers/layers.hpp"

namespace sat::layers {

namespace {

class PatchEmbed final : public Layer {
 public:
  PatchEmbed(int64_t patch, int64_t dim, NM nm) : patch_(patch), dim_(dim), nm_(nm) {}
  std::string type() const override { return "patch_embed"; }
  nlohmann::json attrs() const override { return {{"patch", patch_}, {"dim", dim_}}; }

  Shape build(const Shape& in, Rng& rng) override {
    const std::string want = "[C, H, W] with H and W divisible by patch (" +
                             std::to_string(patch_) + ")";
    if (in.size() != 3 || in[1] % patch_ != 0 || in[2] % patch_ != 0) bad_input(*this, want, in);
    c_ = in[0];
    gh_ = in[1] / patch_;
    gw_ = in[2] / patch_;
    t_ = gh_ * gw_;
    k_ = c_ * patch_ * patch_;
    weight_ = Param(name + ".weight", {dim_, k_});
    init_weight(weight_, k_, rng);
    bias_ = Param(name + ".bias", {dim_}, true, false);
    init_bias(bias_, k_, rng);
    pos_ = Param(name + ".pos_embed", {t_, dim_}, true, false);
    std::normal_distribution<double> nd(0.0, 0.02);
    for (float& v : pos_.value) v = static_cast<float>(nd(rng));
    setup_sparse(sw_, weight_, dim_, k_, nm_);
    return {t_, dim_};
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    const int64_t batch = x.dim(0), cols = batch * t_;
    const std::vector<float> xf = x.to_f32();
    std::vector<float> xt(static_cast<size_t>(k_ * cols));
    for_each_patch_element(batch, [&](int64_t k, int64_t col, int64_t pixel) {
      xt[k * cols + col] = xf[pixel];
    });
    std::vector<float> yt(static_cast<size_t>(dim_ * cols));
    cpu::ff_product(sw_, ctx, xt.data(), cols, yt.data());
    std::vector<float> y(yt.size());
    cpu::transpose(yt.data(), dim_, cols, y.data());
    for (int64_t col = 0; col < cols; ++col) {
      const float* pos = &pos_.value[(col % t_) * dim_];
      for (int64_t d = 0; d < dim_; ++d) y[col * dim_ + d] += bias_.value[d] + pos[d];
    }
    if (ctx.training) xt_ = std::move(xt);
    return Tensor::from_f32({batch, t_, dim_}, y);
  }

  Tensor backward(const Tensor& dy, const StepContext& ctx) override {
    const int64_t batch = dy.dim(0), cols = batch * t_;
    const std::vector<float> g = dy.to_f32();
    std::vector<double> dbias(static_cast<size_t>(dim_)), dpos(static_cast<size_t>(t_ * dim_));
    for (int64_t col = 0; col < cols; ++col) {
      double* pos = &dpos[(col % t_) * dim_];
      for (int64_t d = 0; d < dim_; ++d) {
        dbias[d] += g[col * dim_ + d];
        pos[d] += g[col * dim_ + d];
      }
    }
    for (int64_t d = 0; d < dim_; ++d) bias_.grad[d] += static_cast<float>(dbias[d]);
    for (size_t i = 0; i < dpos.size(); ++i) pos_.grad[i] += static_cast<float>(dpos[i]);

    std::vector<float> gt(g.size());
    cpu::transpose(g.data(), cols, dim_, gt.data());
    cpu::wu_product(sw_, ctx, gt.data(), xt_.data(), cols);
    std::vector<float> dxt(static_cast<size_t>(k_ * cols));
    cpu::bp_product(sw_, ctx, gt.data(), cols, dxt.data());
    // Patches do not overlap, so every pixel receives exactly one gradient.
    std::vector<float> dx(static_cast<size_t>(batch * c_ * gh_ * patch_ * gw_ * patch_));
    for_each_patch_element(batch, [&](int64_t k, int64_t col, int64_t pixel) {
      dx[pixel] = dxt[k * cols + col];
    });
    Shape s = in_shape;
    s.insert(s.begin(), batch);
    return Tensor::from_f32(s, dx);
  }

  void params(std::vector<Param*>& out) override {
    out.push_back(&weight_);
    out.push_back(&bias_);
    out.push_back(&pos_);
  }
  void sparse_weights(std::vector<SparseWeight*>& out) override { out.push_back(&sw_); }

  void describe(std::vector<LayerInfo>& out, Method method) const override {
    out.push_back(weight_layer_info(*this, sw_, method, static_cast<double>(t_), dim_ + t_ * dim_));
  }


 private:
  // Calls f(k, col, pixel) for every element of every patch: row k of the [K][batch * T] patch
  // matrix, its column b * T + t, and the element's index in the [batch, C, H, W] image tensor.
  template <typename F>
  void for_each_patch_element(int64_t batch, F&& f) const {
    const int64_t w = gw_ * patch_, plane = gh_ * patch_ * w;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t py = 0; py < gh_; ++py)
        for (int64_t px = 0; px < gw_; ++px) {
          const int64_t col = b * t_ + py * gw_ + px;
          for (int64_t c = 0; c < c_; ++c)
            for (int64_t ph = 0; ph < patch_; ++ph)
              for (int64_t pw = 0; pw < patch_; ++pw) {
                const int64_t k = (c * patch_ + ph) * patch_ + pw;
                const int64_t pixel =
                    (b * c_ + c) * plane + (py * patch_ + ph) * w + px * patch_ + pw;
                f(k, col, pixel);
              }
        }
  }

  int64_t patch_, dim_;
  NM nm_;
  int64_t c_ = 0, gh_ = 0, gw_ = 0, t_ = 0, k_ = 0;
  Param weight_, bias_, pos_;
  SparseWeight sw_;
  std::vector<float> xt_;                                        // cached patches, [K][P]
};

}  // namespace

LayerPtr make_patch_embed(const LayerSpec& spec) {
  spec.allow_only({"patch", "dim", "nm"});
  const int64_t patch = spec.get_int("patch");
  const int64_t dim = spec.get_int("dim");
  if (patch < 1) spec.fail("\"patch\" must be >= 1");
  if (dim < 1) spec.fail("\"dim\" must be >= 1");
  return std::make_unique<PatchEmbed>(patch, dim, spec.nm());
}

}  // namespace sat::layers
