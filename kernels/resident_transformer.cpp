// ViT's layers in the GPU-resident step (resident_ops.hpp): LayerNorm, GELU, the token mean and
// multi-head self-attention, over the [B*T][D] activation rows. The attention's projections run on
// the N:M products (or cuBLAS) like a linear layer; its core (scores, softmax, context) is one
// kernel per image and head (transformer_kernels.cu). Q, K and V stay FP32 between the projections
// and the core, as on the CPU; the core's output, the out-projection's input, is rounded to BF16
// because the products take BF16 operands.
#include <array>
#include <cmath>

#include "layer_ops.hpp"
#include "resident_ops.hpp"
#include "sat/error.hpp"
#include "transformer_ops.hpp"

namespace sat::cuda {

namespace {

using Op = ResidentPlan::Op;

struct LayerNormOp final : Op {
  double eps;
  int64_t rows, d;
  const float *gamma, *beta;
  float *ggrad, *bgrad;
  float* xhat;   // FP32 [rows][d], as the CPU layer caches it
  float* rstd;   // FP32 [rows]
  LayerNormOp(Ctx& c, Layer* l) {
    eps = l->attrs()["eps"].get<double>();
    const auto ps = params_of(l);
    gamma = c.links->value(ps.at(0));
    beta = c.links->value(ps.at(1));
    ggrad = c.links->grad(ps.at(0));
    bgrad = c.links->grad(ps.at(1));
    y = c.act(l->out_shape);
    rows = y.rows;
    d = y.cols;
    dx = c.alloc<uint16_t>(y.n());
    xhat = c.alloc<float>(y.n());
    rstd = c.alloc<float>(rows);
    c.partial_elems = std::max(c.partial_elems, layernorm_partials(rows, d));
  }
  void fwd(Ctx& c, const Act& x, bool) override {
    layernorm_forward(x.p, rows, d, eps, gamma, beta, xhat, rstd, y.p, c.s);
  }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool) override {
    layernorm_backward(dy, xhat, rstd, rows, d, gamma, ggrad, bgrad, c.partial, dx, c.s);
    return dx;
  }
};

struct GeluOp final : Op {
  bool tanh_form;
  GeluOp(Ctx& c, Layer* l) : tanh_form(l->attrs()["tanh"].get<bool>()) {
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(y.n());
  }
  void fwd(Ctx& c, const Act& x, bool) override { gelu_forward(x.p, x.n(), tanh_form, y.p, c.s); }
  const uint16_t* bwd(Ctx& c, const Act& x, const uint16_t* dy, bool) override {
    gelu_backward(x.p, dy, x.n(), tanh_form, dx, c.s);
    return dx;
  }
};

struct TokenMeanOp final : Op {
  int64_t t, d;
  TokenMeanOp(Ctx& c, Layer* l) : t(l->in_shape.at(0)), d(l->in_shape.at(1)) {
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(c.batch * t * d);
  }
  void fwd(Ctx& c, const Act& x, bool) override { token_mean_forward(x.p, c.batch, t, d, y.p, c.s); }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool) override {
    token_mean_backward(dy, c.batch, t, d, dx, c.s);
    return dx;
  }
};

// Projections in Attention's order (host/src/layers/attention.cpp): q, k, v, out.
enum Proj { kQ, kK, kV, kO };

struct AttentionOp final : Op {
  std::array<SparseWeight*, 4> sw{};
  std::array<const float*, 4> bias_v{};
  std::array<float*, 4> bias_g{};
  bool bias = false;
  AttnShape shape{};
  int64_t rows = 0, d = 0, ldx = 0;
  uint16_t* xpad = nullptr;   // the input padded to ldx columns when d % 64 != 0 (kept for WU)
  std::array<float*, 3> qkv{};   // FP32 [rows][d]; backward reuses them for the input gradient's terms
  float* probs = nullptr;        // FP32 [batch][heads][t][t]
  uint16_t* o = nullptr;         // the core's output, BF16 [rows][ldx], zero beyond d
  std::array<uint16_t*, 3> dqkv{};   // BF16 [rows][d]
  AttentionOp(Ctx& c, Layer* l) {
    std::vector<SparseWeight*> w;
    l->sparse_weights(w);
    for (int p = 0; p < 4; ++p) sw[p] = w.at(p);
    const auto a = l->attrs();
    bias = a["bias"].get<bool>();
    if (bias) {
      const auto ps = params_of(l);
      for (int p = 0; p < 4; ++p) {
        bias_v[p] = c.links->value(ps.at(2 * p + 1));
        bias_g[p] = c.links->grad(ps.at(2 * p + 1));
      }
    }
    const int64_t t = l->in_shape.at(0), heads = a["heads"].get<int64_t>();
    d = l->in_shape.at(1);
    // The CPU layer's scale, computed the same way (in float).
    shape = {c.batch, t, d, heads, 1.0f / std::sqrt(static_cast<float>(d / heads))};
    rows = c.batch * t;
    ldx = padded_len(d);
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(rows * d);
    if (ldx != d) xpad = c.alloc<uint16_t>(rows * ldx);
    for (auto& b : qkv) b = c.alloc<float>(rows * d);
    for (auto& b : dqkv) b = c.alloc<uint16_t>(rows * d);
    probs = c.alloc<float>(c.batch * heads * t * t);
    o = c.alloc<uint16_t>(rows * ldx);
    SAT_CUDA_CHECK(cudaMemsetAsync(o, 0, rows * ldx * sizeof(uint16_t), c.s));   // the padding columns
    c.acc_elems = std::max(c.acc_elems, rows * d);
    c.pad_elems = std::max(c.pad_elems, rows * ldx);
    c.partial_elems = std::max(c.partial_elems, column_partials(rows, d));
  }
  const uint16_t* input(const Act& x) const { return xpad ? xpad : x.p; }
  void fwd(Ctx& c, const Act& x, bool) override {
    if (xpad) pad_rows(x.p, rows, d, xpad, ldx, c.s);
    for (int p = kQ; p <= kV; ++p) {
      ff_product(c, *sw[p], input(x), ldx, rows, qkv[p], false, d);
      add_bias_f32(qkv[p], rows, d, bias_v[p], c.s);
    }
    c.mark("attention FF q, k, v products");
    attention_forward(qkv[kQ], qkv[kK], qkv[kV], shape, probs, o, ldx, c.s);
    c.mark("attention FF core");
    ff_product(c, *sw[kO], o, ldx, rows, bias ? static_cast<void*>(c.acc) : y.p, !bias, d);
    if (bias) bias_round(c.acc, d, bias_v[kO], rows, d, y.p, c.s);
  }
  const uint16_t* bwd(Ctx& c, const Act& x, const uint16_t* dy, bool need_dx) override {
    if (bias) bias_grad(dy, rows, d, c.partial, bias_g[kO], c.s);
    c.blas->wu(dy, d, o, ldx, rows, d, d, c.links->weight(sw[kO]).grad, false, 1.0f);
    bp_product(c, *sw[kO], dy, rows, c.acc, false, d);   // dO, FP32
    c.mark("attention BP out projection");
    attention_backward(qkv[kQ], qkv[kK], qkv[kV], probs, c.acc, d, shape, dqkv[kQ], dqkv[kK], dqkv[kV], c.s);
    c.mark("attention BP core");
    for (int p = kQ; p <= kV; ++p) {
      if (bias) bias_grad(dqkv[p], rows, d, c.partial, bias_g[p], c.s);
      c.blas->wu(dqkv[p], d, input(x), ldx, rows, d, d, c.links->weight(sw[p]).grad, false, 1.0f);
      if (need_dx) bp_product(c, *sw[p], dqkv[p], rows, qkv[p], false, d);
    }
    if (!need_dx) return nullptr;
    add3_round(qkv[kQ], qkv[kK], qkv[kV], rows * d, dx, c.s);
    return dx;
  }
};

}  // namespace

bool is_transformer_type(const std::string& t) {
  return t == "layernorm" || t == "gelu" || t == "token_mean" || t == "attention";
}

std::string transformer_unsupported(Layer& l) {
  const std::string t = l.type();
  if (t == "layernorm") {
    if (l.in_shape.size() == 3) {
      return "layernorm over the last dimension of a [C, H, W] map (the resident activations are channels-last)";
    }
    return layernorm_unsupported(l.in_shape.back());
  }
  if (t == "attention") {
    const int64_t heads = l.attrs()["heads"].get<int64_t>();
    return attention_unsupported(l.in_shape.at(0), l.in_shape.at(1) / heads);
  }
  return {};
}

std::unique_ptr<Op> make_transformer_op(Ctx& c, Layer* l, const Act&) {
  const std::string t = l->type();
  if (t == "layernorm") return std::make_unique<LayerNormOp>(c, l);
  if (t == "gelu") return std::make_unique<GeluOp>(c, l);
  if (t == "token_mean") return std::make_unique<TokenMeanOp>(c, l);
  if (t == "attention") return std::make_unique<AttentionOp>(c, l);
  return nullptr;
}

}  // namespace sat::cuda
