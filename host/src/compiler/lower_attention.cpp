// Lowering of `attention` (host/src/layers/attention.cpp), multi-head self-attention over the
// tokens [B][T][D] of each sample, dh = D / heads, P = B * T token rows.
//
// FF
//   Q, K, V = X Wq^T + bq, ... : three weight products ([P][D] each, bias added by the store).
//   per sample b, head h (off = b*T*D + h*dh; a head is a [T][dh] block with row stride D):
//     S  = Q_h K_h^T                 matmul, both operands token rows      -> BF16 [T][T]
//     A  = softmax(S / sqrt(dh))     V_SOFTMAX (scale field), saved for BP
//     O_h = A V_h                    matmul, B operand V_h^T read through strides (1, D)
//   Y = O Wo^T + bo: the output weight product.
// BP (dY given)
//   dbo = colsum(dY); dWo = dY^T O; dO = dY Wo
//   per (b, h): dA = dO_h V_h^T; dV_h = A^T dO_h; dS = V_SOFTMAX_BWD(A, dA) (the 1/sqrt(dh) scale
//   folded in); dQ_h = dS K_h; dK_h = dS^T Q_h
//   for p in q, k, v: db_p = colsum(dP); dW_p = dP^T X; dX (+)= dP W_p into one FP32 accumulator
//   (first product overwrites, the other two add), then V_CONVERT to BF16 (rounded once, as the
//   CPU reference sums in FP32).
//
// The score/probability matrices are kept per chunk of samples (at most kChunks regions per kind),
// and the per-chunk work is software-pipelined: the products of chunk c+1 are emitted before those
// of chunk c that wait for the vector unit (softmax), so that the PE array works while the vector
// unit runs the softmax of the previous chunk (dependencies are tracked per region).
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

constexpr int kChunks = 4;
enum Proj { kQ, kK, kV, kO };
constexpr int kProjections = 4;
const char* const kProjName[kProjections] = {"q_proj", "k_proj", "v_proj", "out_proj"};

struct Chunk {
  int64_t s0 = 0, s1 = 0;       // samples [s0, s1)
  TensorRef a, b;               // FF: scores, probabilities; BP: dA, dS ([s1 - s0][H][T][T])
};

class AttentionLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    setup(lw, layer, x);
    const int64_t b = lw.batch(), p = b * t_;
    x_ = x;

    // Projections.
    for (int i = kQ; i <= kV; ++i) {
      const char* what = i == kQ ? ".q" : i == kK ? ".k" : ".v";
      qkv_[i] = lw.alloc(layer.name + what, RegionKind::activation, {b, t_, d_});
      lw.ff_product(w_[i], Operand::rows(x, d_, 1), p, bias_output(lw, qkv_[i], bias_[i], d_));
    }

    // Scores, softmax, A V per chunk, pipelined.
    o_ = lw.alloc(layer.name + ".attn", RegionKind::activation, {b, t_, d_});
    probs_ = chunks(lw, layer, ".scores", ".probs", RegionKind::activation);
    const TensorRef &q = qkv_[kQ], &k = qkv_[kK], &v = qkv_[kV];
    for (size_t c = 0; c <= probs_.size(); ++c) {
      if (c < probs_.size()) {
        Chunk& ch = probs_[c];
        for_heads(ch, [&](int64_t off, const TensorRef& tt, const TensorRef&) {
          // S[t][s] = sum_d Q[t][d] K[s][d]
          lw.matmul(Operand::rows(q.slice(off, {t_, dh_}), d_, 1),
                    Operand::rows(k.slice(off, {t_, dh_}), d_, 1), Output::rows(tt, t_, 1), t_, t_,
                    dh_);
        });
        softmax(lw, ch.a, ch.b, ch.s1 - ch.s0);
      }
      if (c >= 1) {
        for_heads(probs_[c - 1], [&](int64_t off, const TensorRef&, const TensorRef& a) {
          // O[t][d] = sum_s A[t][s] V[s][d]: B operand element (d, s) at V + d + s*D.
          lw.matmul(Operand::rows(a, t_, 1), Operand::rows(v.slice(off, {t_, dh_}), 1, d_),
                    Output::rows(o_.slice(off, {t_, dh_}), d_, 1), t_, dh_, t_);
        });
      }
    }

    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation, {b, t_, d_});
    lw.ff_product(w_[kO], Operand::rows(o_, d_, 1), p, bias_output(lw, y, bias_[kO], d_));
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (!x_.valid()) lw.fail("backward lowered before forward");
    const int64_t b = lw.batch(), p = b * t_;
    check_dy(lw, dy, p * d_, "[batch, tokens, features] ");

    // Output projection: dO first (the attention core waits for it), then its gradients.
    const TensorRef d_o = lw.alloc(layer.name + ".d_attn", RegionKind::gradient, {b, t_, d_});
    lw.bp_product(w_[kO], Operand::rows(dy, d_, 1), p, Output::rows(d_o, d_, 1));
    if (bias_[kO]) bias_grad(lw, bias_[kO], dy, p, d_);
    lw.wu_product(w_[kO], Operand::rows(dy, 1, d_), Operand::rows(o_, 1, d_), p);

    // Attention core.
    std::array<TensorRef, 3> dqkv;
    for (int i = kQ; i <= kV; ++i) {
      const char* what = i == kQ ? ".dq" : i == kK ? ".dk" : ".dv";
      dqkv[i] = lw.alloc(layer.name + what, RegionKind::gradient, {b, t_, d_});
    }
    std::vector<Chunk> grads = chunks(lw, layer, ".dprobs", ".dscores", RegionKind::gradient);
    const TensorRef &q = qkv_[kQ], &k = qkv_[kK], &v = qkv_[kV];
    for (size_t c = 0; c <= grads.size(); ++c) {
      if (c < grads.size()) {
        const Chunk& pc = probs_[c];
        Chunk& gc = grads[c];
        for (int64_t s = gc.s0; s < gc.s1; ++s) {
          for (int64_t h = 0; h < heads_; ++h) {
            const int64_t off = s * t_ * d_ + h * dh_;
            const int64_t blk = ((s - gc.s0) * heads_ + h) * t_ * t_;
            const TensorRef a = pc.b.slice(blk, {t_, t_});
            const TensorRef dob = d_o.slice(off, {t_, dh_});
            // dA[t][s'] = sum_d dO[t][d] V[s'][d]
            lw.matmul(Operand::rows(dob, d_, 1), Operand::rows(v.slice(off, {t_, dh_}), d_, 1),
                      Output::rows(gc.a.slice(blk, {t_, t_}), t_, 1), t_, t_, dh_);
            // dV[s'][d] = sum_t A[t][s'] dO[t][d]: A operand A^T (strides 1, T), B operand dO^T.
            lw.matmul(Operand::rows(a, 1, t_), Operand::rows(dob, 1, d_),
                      Output::rows(dqkv[kV].slice(off, {t_, dh_}), d_, 1), t_, dh_, t_);
          }
        }
        softmax_bwd(lw, pc.b, gc.a, gc.b, gc.s1 - gc.s0);
      }
      if (c >= 1) {
        for_heads(grads[c - 1], [&](int64_t off, const TensorRef&, const TensorRef& ds) {
          // dQ[t][d] = sum_s dS[t][s] K[s][d]: B operand K^T (strides 1, D).
          lw.matmul(Operand::rows(ds, t_, 1), Operand::rows(k.slice(off, {t_, dh_}), 1, d_),
                    Output::rows(dqkv[kQ].slice(off, {t_, dh_}), d_, 1), t_, dh_, t_);
          // dK[s][d] = sum_t dS[t][s] Q[t][d]: A operand dS^T, B operand Q^T.
          lw.matmul(Operand::rows(ds, 1, t_), Operand::rows(q.slice(off, {t_, dh_}), 1, d_),
                    Output::rows(dqkv[kK].slice(off, {t_, dh_}), d_, 1), t_, dh_, t_);
        });
      }
    }

    // Input projections: parameter gradients, then dX summed in FP32.
    TensorRef acc;
    if (need_dx) {
      acc = lw.alloc(layer.name + ".dx_acc", RegionKind::gradient, {b, t_, d_}, DType::f32);
    }
    for (int i = kQ; i <= kV; ++i) {
      if (bias_[i]) bias_grad(lw, bias_[i], dqkv[i], p, d_);
      lw.wu_product(w_[i], Operand::rows(dqkv[i], 1, d_), Operand::rows(x_, 1, d_), p);
      if (need_dx) {
        Output o = Output::rows(acc, d_, 1);
        o.accumulate = i != kQ;
        lw.bp_product(w_[i], Operand::rows(dqkv[i], d_, 1), p, o);
      }
    }
    if (!need_dx) return {};
    const TensorRef dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, x_.shape);
    convert_to_bf16(lw, acc, dx);
    return dx;
  }

 private:
  void setup(Lowering& lw, Layer& layer, const TensorRef& x) {
    heads_ = attr_int(lw, layer, "heads");
    const bool has_bias = layer.attrs().value("bias", true);
    if (layer.in_shape.size() != 2) {
      lw.fail("expected a [tokens, features] input, got " + shape_str(layer.in_shape));
    }
    t_ = layer.in_shape[0];
    d_ = layer.in_shape[1];
    if (heads_ < 1 || d_ % heads_ != 0) {
      lw.fail("features (" + std::to_string(d_) + ") must divide by heads (" +
              std::to_string(heads_) + ")");
    }
    dh_ = d_ / heads_;
    lw.check_row(t_, "attention softmax");
    const int64_t b = lw.batch();
    if (x.dtype != DType::bf16 || x.numel() != b * t_ * d_) {
      lw.fail("expected a BF16 [batch, tokens, features] input of " + std::to_string(b * t_ * d_) +
              " elements, got " + std::to_string(x.numel()));
    }
    std::vector<SparseWeight*> sw;
    layer.sparse_weights(sw);
    if (sw.size() != kProjections) {
      lw.fail("expected 4 N:M weights (q, k, v, out projections), the layer has " +
              std::to_string(sw.size()));
    }
    for (int i = 0; i < kProjections; ++i) {
      w_[i] = sw[i];
      if (!w_[i] || w_[i]->cout != d_ || w_[i]->k != d_) {
        lw.fail(std::string("the ") + kProjName[i] + " weight is not [" + std::to_string(d_) +
                "][" + std::to_string(d_) + "]");
      }
      bias_[i] = nullptr;
      if (has_bias) {
        const std::string suffix = std::string(".") + kProjName[i] + ".bias";
        bias_[i] = lw.param(layer, suffix);
        if (!bias_[i]) lw.fail("has no parameter '" + suffix + "' (its settings say bias)");
      }
    }
    scale_ = 1.0f / std::sqrt(static_cast<float>(dh_));
  }

  // Splits the batch into at most kChunks chunks, each with two [samples][H][T][T] BF16 regions.
  std::vector<Chunk> chunks(Lowering& lw, Layer& layer, const char* first, const char* second,
                            RegionKind kind) const {
    const int64_t b = lw.batch();
    const int64_t n = std::min<int64_t>(b, kChunks);
    std::vector<Chunk> out;
    for (int64_t c = 0; c < n; ++c) {
      Chunk ch;
      ch.s0 = c * b / n;
      ch.s1 = (c + 1) * b / n;
      const Shape s = {ch.s1 - ch.s0, heads_, t_, t_};
      const std::string suffix = n > 1 ? ".c" + std::to_string(c) : "";
      ch.a = lw.alloc(layer.name + first + suffix, kind, s);
      ch.b = lw.alloc(layer.name + second + suffix, kind, s);
      out.push_back(ch);
    }
    return out;
  }

  // Calls f(off, a-block, b-block) for every (sample, head) of the chunk: off is the head's first
  // element in a [B][T][D] tensor, the blocks the chunk's [T][T] matrices of that (sample, head).
  template <typename F>
  void for_heads(const Chunk& ch, F&& f) const {
    for (int64_t s = ch.s0; s < ch.s1; ++s)
      for (int64_t h = 0; h < heads_; ++h) {
        const int64_t blk = ((s - ch.s0) * heads_ + h) * t_ * t_;
        f(s * t_ * d_ + h * dh_, ch.a.slice(blk, {t_, t_}), ch.b.slice(blk, {t_, t_}));
      }
  }

  void softmax(Lowering& lw, const TensorRef& x, const TensorRef& y, int64_t samples) const {
    lw.emit_vec(Lowering::insn(isa::OP_V_SOFTMAX, 0,
                               {{isa::f_V_SOFTMAX::x, lw.addr(x)},
                                {isa::f_V_SOFTMAX::y, lw.addr(y)},
                                {isa::f_V_SOFTMAX::rows, lw.u32(samples * heads_ * t_, "rows")},
                                {isa::f_V_SOFTMAX::cols, lw.u32(t_, "cols")},
                                {isa::f_V_SOFTMAX::scale, Lowering::f32(scale_)}}),
                {x}, {y});
  }

  void softmax_bwd(Lowering& lw, const TensorRef& y, const TensorRef& dy, const TensorRef& dx,
                   int64_t samples) const {
    lw.emit_vec(Lowering::insn(isa::OP_V_SOFTMAX_BWD, 0,
                               {{isa::f_V_SOFTMAX_BWD::y, lw.addr(y)},
                                {isa::f_V_SOFTMAX_BWD::dy, lw.addr(dy)},
                                {isa::f_V_SOFTMAX_BWD::dx, lw.addr(dx)},
                                {isa::f_V_SOFTMAX_BWD::rows, lw.u32(samples * heads_ * t_, "rows")},
                                {isa::f_V_SOFTMAX_BWD::cols, lw.u32(t_, "cols")},
                                {isa::f_V_SOFTMAX_BWD::scale, Lowering::f32(scale_)}}),
                {y, dy}, {dx});
  }

  int64_t heads_ = 0, t_ = 0, d_ = 0, dh_ = 0;
  float scale_ = 1.0f;
  std::array<SparseWeight*, kProjections> w_{};
  std::array<Param*, kProjections> bias_{};
  TensorRef x_, o_;
  std::array<TensorRef, 3> qkv_;
  std::vector<Chunk> probs_;    // FF: a = scores, b = probabilities (saved for BP)
};

}  // namespace

std::unique_ptr<LayerLowering> make_attention_lowering() {
  return std::make_unique<AttentionLowering>();
}

}  // namespace sat::compiler
