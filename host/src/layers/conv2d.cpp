// Conv2d through the weight products of cpu/weight_ops.hpp, so that convolutions go through the
// same dense / N:M dispatch as Linear. K = cin*k*k in (cin, kh, kw) order, P = images x output
// positions (the im2col layout of sat/conv_geometry.hpp), which makes W[cout][K] the same matrix
// PyTorch's weight.reshape(cout, -1) is. No CPU product lowers the batch any more: the N:M FF and
// BP and the dense WU read the images through their windows (cpu::conv_ff_on_images,
// conv_bp_on_images, conv_wu_on_images), and the dense FF and BP (every product under dense
// training, a dense layer's, SR-STE's BP) go through oneDNN's convolutions (cpu/dnnl_conv.hpp).
// The batch is still lowered
// (im2col, col2im) where a device backend takes the products but not the whole convolution, or
// where SAT_CONV_LOWERED=1 asks for the lowered path (the same bits, kept to compare); a device
// backend may also take the whole convolution (cpu::routed_conv_ff / routed_conv_backward: it
// lowers on the device, and only the images travel).
#include <algorithm>
#include <memory>
#include <tuple>

#include "cpu/dnnl_conv.hpp"
#include "sat/cpu_kernels.hpp"
#include "cpu/weight_ops.hpp"
#include "layers/common.hpp"
#include "layers/layers.hpp"
#include "sat/error.hpp"

namespace sat::layers {

namespace {

// Bound on the per-chunk scratch (col, dcol and the output-gradient matrix): large batches of
// large images are lowered a few images at a time instead of all at once.
constexpr int64_t kScratchFloats = int64_t{32} << 20;   // 128 MiB

class Conv2d final : public Layer {
 public:
  Conv2d(int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, NM nm)
      : cout_(out), k_(kernel), s_(stride), p_(padding), has_bias_(bias), nm_(nm) {}
  std::string type() const override { return "conv2d"; }
  nlohmann::json attrs() const override {
    return {{"out", cout_}, {"kernel", k_}, {"stride", s_}, {"padding", p_}, {"bias", has_bias_}};
  }

  Shape build(const Shape& in, Rng& rng) override {
    std::tie(oh_, ow_) = window_output(*this, in, k_, s_, p_);
    cin_ = in[0];
    h_ = in[1];
    w_ = in[2];
    // A kernel from a model file may be near 2^62 (with a padding that lets it fit the input).
    if (__builtin_mul_overflow(cin_, k_, &kdim_) || __builtin_mul_overflow(kdim_, k_, &kdim_)) {
      throw Error(name + " (conv2d): kernel " + std::to_string(k_) + " over " + std::to_string(cin_) +
                  " channels has too many elements");
    }
    weight_ = Param(name + ".weight", {cout_, kdim_});
    init_weight(weight_, kdim_, rng);
    if (has_bias_) {
      bias_ = Param(name + ".bias", {cout_}, true, false);
      init_bias(bias_, kdim_, rng);
    }
    setup_sparse(sw_, weight_, cout_, kdim_, nm_);
    return {cout_, oh_, ow_};
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    if (x.rank() != 4 || Shape(x.shape().begin() + 1, x.shape().end()) != in_shape) {
      bad_input(*this, "[batch, " + shape_str(in_shape).substr(1), x.shape());
    }
    const int64_t batch = x.dim(0), ohw = oh_ * ow_, chunk = images_per_chunk(batch);
    x_.resize(static_cast<size_t>(x.numel()));
    x.to_f32(x_.data());
    cached_batch_ = ctx.training ? batch : 0;
    xpad_whole_ = false;
    if (!ctx.router && !sw_.ff_sparse(ctx.method)) {
      require_dense();
      y_.resize(static_cast<size_t>(batch * cout_ * ohw));
      dnnl().forward(x_.data(), batch, sw_.dense.data(), has_bias_ ? bias_.value.data() : nullptr,
                     y_.data());
      col_cached_ = false;
      return Tensor::from_f32({batch, cout_, oh_, ow_}, y_.data());
    }
    bool routed = false, lowered = false;
    yt_.resize(static_cast<size_t>(cout_ * chunk * ohw));
    y_.resize(static_cast<size_t>(batch * cout_ * ohw));
    std::vector<float>& y = y_;
    for (int64_t b0 = 0; b0 < batch; b0 += chunk) {
      const int64_t nb = std::min(chunk, batch - b0), cols = nb * ohw;
      const float* xb = x_.data() + b0 * cin_ * h_ * w_;
      routed = cpu::routed_conv_ff(sw_, ctx, geometry(), xb, nb, yt_.data());
      if (!routed && !cpu::conv_ff_on_images(sw_, ctx, geometry(), xb, nb, xpad_, yt_.data())) {
        // Lower on the host (the lowered chunk is allocated only here).
        col_.resize(static_cast<size_t>(kdim_ * chunk * ohw));
        cpu::im2col(geometry(), xb, nb, col_.data(), cols);
        cpu::ff_product(sw_, ctx, col_.data(), cols, yt_.data());
        lowered = true;
      }
      float* yb = y.data() + b0 * cout_ * ohw;
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t b = 0; b < nb; ++b) {
        for (int64_t o = 0; o < cout_; ++o) {
          const float* src = yt_.data() + o * cols + b * ohw;
          float* dst = yb + (b * cout_ + o) * ohw;
          const float bias = has_bias_ ? bias_.value[o] : 0.0f;
          for (int64_t i = 0; i < ohw; ++i) dst[i] = src[i] + bias;
        }
      }
    }
    // Backward reuses the lowered batch when it was lowered in one piece; otherwise it lowers
    // each chunk again from the input kept in x_ (or runs WU on the images, which needs none).
    col_cached_ = chunk == batch && lowered;
    xpad_whole_ = chunk == batch && !lowered && !routed;   // FF padded the whole batch for itself
    return Tensor::from_f32({batch, cout_, oh_, ow_}, y.data());
  }

  Tensor backward(const Tensor& dy, const StepContext& ctx) override {
    if (cached_batch_ == 0) {
      throw Error(name + " (conv2d): backward needs a forward in training mode first");
    }
    const Shape want = {cached_batch_, cout_, oh_, ow_};
    if (dy.shape() != want) bad_input(*this, "gradient " + shape_str(want), dy.shape());
    const int64_t batch = cached_batch_, ohw = oh_ * ow_, chunk = images_per_chunk(batch);
    // Member buffers, not fresh vectors: every element is written, and a fresh vector would be
    // zero-filled first (and page-faulted in) every step.
    g_.resize(static_cast<size_t>(dy.numel()));
    dy.to_f32(g_.data());
    const std::vector<float>& g = g_;
    dx_.resize(ctx.input_grad ? x_.size() : 0);
    std::vector<float>& dx = dx_;
    if (!ctx.router && !sw_.bp_sparse(ctx.method)) {
      // BP and WU both dense, on the images themselves: nothing lowered.
      if (has_bias_) bias_grad(g.data(), batch);
      cpu::conv_wu_on_images(sw_, ctx, geometry(), padded_input(0, batch), g.data(), batch);
      if (!ctx.input_grad) return Tensor();
      require_dense();
      dnnl().backward_data(g.data(), batch, sw_.dense.data(), dx.data());
      return Tensor::from_f32({batch, cin_, h_, w_}, dx.data());
    }
    for (int64_t b0 = 0; b0 < batch; b0 += chunk) {
      const int64_t nb = std::min(chunk, batch - b0), cols = nb * ohw;
      const float* gb = g.data() + b0 * cout_ * ohw;
      // One pass over the chunk's gradient: gathers it into [cout][P] and sums the bias gradient
      // (in double: an FP32 sum over batch x positions loses digits; simd keeps it vectorised).
#pragma omp parallel for schedule(static)
      for (int64_t o = 0; o < cout_; ++o) {
        float* dst = yt_.data() + o * cols;
        double sum = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const float* src = gb + (b * cout_ + o) * ohw;
#pragma omp simd reduction(+ : sum)
          for (int64_t i = 0; i < ohw; ++i) {
            dst[b * ohw + i] = src[i];
            sum += src[i];
          }
        }
        if (has_bias_) bias_.grad[o] += static_cast<float>(sum);
      }
      const float* xb = x_.data() + b0 * cin_ * h_ * w_;
      float* dxb = ctx.input_grad ? dx.data() + b0 * cin_ * h_ * w_ : nullptr;
      if (cpu::routed_conv_backward(sw_, ctx, geometry(), xb, nb, yt_.data(), dxb)) continue;
      if (!ctx.router) {
        // WU on the images even when FF lowered them: cheaper than the product over the
        // lowered matrix (a reduction over all of P for a small Cout x K output).
        cpu::conv_wu_on_images(sw_, ctx, geometry(), padded_input(b0, nb), gb, nb);
      } else {
        if (!col_cached_) {
          col_.resize(static_cast<size_t>(kdim_ * chunk * ohw));
          cpu::im2col(geometry(), xb, nb, col_.data(), cols);
        }
        cpu::wu_product(sw_, ctx, yt_.data(), col_.data(), cols);
      }
      if (!ctx.input_grad) continue;
      if (cpu::conv_bp_on_images(sw_, ctx, geometry(), yt_.data(), cols, nb, dxb)) continue;
      dcol_.resize(static_cast<size_t>(kdim_ * chunk * ohw));
      cpu::bp_product(sw_, ctx, yt_.data(), cols, dcol_.data());
      cpu::col2im(geometry(), dcol_.data(), cols, nb, dxb);
    }
    if (!ctx.input_grad) return Tensor();
    return Tensor::from_f32({batch, cin_, h_, w_}, dx.data());
  }

  void params(std::vector<Param*>& out) override {
    out.push_back(&weight_);
    if (has_bias_) out.push_back(&bias_);
  }
  void sparse_weights(std::vector<SparseWeight*>& out) override { out.push_back(&sw_); }

  bool skips_input_grad() const override { return true; }

  void describe(std::vector<LayerInfo>& out, Method method) const override {
    out.push_back(weight_layer_info(*this, sw_, method, static_cast<double>(oh_ * ow_),
                                    has_bias_ ? cout_ : 0));
  }


 private:
  ConvGeometry geometry() const { return {cin_, h_, w_, k_, s_, p_, oh_, ow_}; }

  cpu::DnnlConv& dnnl() {
    if (!dnnl_) dnnl_ = std::make_unique<cpu::DnnlConv>(geometry(), cout_, has_bias_);
    return *dnnl_;
  }
  void require_dense() const {
    if (static_cast<int64_t>(sw_.dense.size()) != cout_ * kdim_) {
      throw Error(name + " (conv2d): the dense weight form was not generated (call Model::regenerate first)");
    }
  }
  // The bias gradient of a whole batch's output gradient g[batch][cout][oh*ow], summed in double
  // per channel as the lowered path sums it (an FP32 sum over batch x positions loses digits).
  void bias_grad(const float* g, int64_t batch) {
    const int64_t ohw = oh_ * ow_;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < cout_; ++o) {
      double sum = 0;
      for (int64_t b = 0; b < batch; ++b) {
        const float* src = g + (b * cout_ + o) * ohw;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < ohw; ++i) sum += src[i];
      }
      bias_.grad[o] += static_cast<float>(sum);
    }
  }

  // Images [b0, b0 + nb) of the cached input, zero-bordered for the products on the images: the
  // forward's copy where it padded the whole batch, else padded here.
  const float* padded_input(int64_t b0, int64_t nb) {
    const int64_t image = cin_ * (h_ + 2 * p_) * (w_ + 2 * p_);
    if (xpad_whole_) return xpad_.data() + b0 * image;
    cpu::conv_pad_images(geometry(), x_.data() + b0 * cin_ * h_ * w_, nb, xpad_);
    return xpad_.data();
  }

  int64_t images_per_chunk(int64_t batch) const {
    const int64_t per_image = (2 * kdim_ + cout_) * oh_ * ow_;
    return std::max<int64_t>(1, std::min(batch, kScratchFloats / per_image));
  }

  int64_t cout_, k_, s_, p_;
  bool has_bias_;
  NM nm_;
  int64_t cin_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0, kdim_ = 0;
  Param weight_, bias_;
  SparseWeight sw_;
  // Scratch kept between calls so that each step reuses the allocations.
  std::vector<float> x_;                 // the last input, FP32
  std::vector<float> y_, g_, dx_;        // output, output gradient and input gradient, FP32
  std::vector<float> xpad_;              // zero-bordered input of the products on the images
  bool xpad_whole_ = false;              // xpad_ holds the whole cached batch
  std::vector<float> col_;               // lowered chunk, [K][images * oh*ow]
  std::vector<float> yt_;                // output (gradient) chunk, [cout][images * oh*ow]
  std::vector<float> dcol_;              // input-gradient chunk, [K][images * oh*ow]
  int64_t cached_batch_ = 0;             // batch of the last training forward; 0: none
  bool col_cached_ = false;              // col_ holds that whole batch lowered
  std::unique_ptr<cpu::DnnlConv> dnnl_;  // the dense convolutions, made on first use
};

}  // namespace

LayerPtr make_conv2d(const LayerSpec& spec) {
  spec.allow_only({"out", "kernel", "stride", "padding", "bias", "nm"});
  const int64_t out = spec.get_int("out");
  const int64_t kernel = spec.get_int("kernel");
  const int64_t stride = spec.get_int("stride", 1);
  const int64_t padding = spec.get_int("padding", 0);
  if (out < 1) spec.fail("\"out\" must be >= 1");
  if (kernel < 1) spec.fail("\"kernel\" must be >= 1");
  if (stride < 1) spec.fail("\"stride\" must be >= 1");
  if (padding < 0) spec.fail("\"padding\" must be >= 0");
  return std::make_unique<Conv2d>(out, kernel, stride, padding, spec.get_bool("bias", true),
                                  spec.nm());
}

}  // namespace sat::layers
