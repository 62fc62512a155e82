// The GPU-resident step (resident.hpp): the model's layers mirrored as device operations over
// channels-last BF16 activations (layer_ops.hpp), the products on the N:M kernels or cuBLAS, the
// loss on the device. Every buffer is allocated when the plan is built (once per model and batch);
// a step allocates nothing and copies nothing to the host.
#include "resident.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "cuda_check.hpp"
#include "cudnn_bn.hpp"
#include "env_setting.hpp"
#include "layer_ops.hpp"
#include "resident_ops.hpp"
#include "sat/error.hpp"
#include "transformer_ops.hpp"

namespace sat::cuda {

Act act_of(const Shape& s, int64_t batch) {
  Act a;
  if (s.size() == 3) {
    a.rows = batch * s[1] * s[2];
    a.cols = s[0];
  } else {
    a.cols = s.back();
    a.rows = batch * (sat::numel(s) / a.cols);
  }
  return a;
}

namespace {

bool supported_type(const std::string& t) {
  static const char* const kTypes[] = {"conv2d", "linear", "batchnorm2d", "relu", "residual", "maxpool2d",
                                       "avgpool2d", "global_avgpool", "flatten", "patch_embed"};
  return is_transformer_type(t) ||
         std::find_if(std::begin(kTypes), std::end(kTypes), [&](const char* k) { return t == k; }) != std::end(kTypes);
}

std::string unsupported_in(std::vector<LayerPtr>& seq) {
  for (auto& l : seq) {
    if (!supported_type(l->type())) return l->name + " (" + l->type() + ")";
    if (std::string why = transformer_unsupported(*l); !why.empty()) return l->name + ": " + why;
    for (auto* b : l->branches()) {
      std::string why = unsupported_in(*b);
      if (!why.empty()) return why;
    }
  }
  return {};
}

}  // namespace

std::string resident_unsupported(Model& model) { return unsupported_in(model.layers); }

namespace {
// A layer's own trainable parameters: a container's params() lists its branches' too, which their
// own operations report.
std::vector<const Param*> own_trainable(Layer* l) {
  std::vector<Param*> all, nested;
  l->params(all);
  for (auto* branch : l->branches()) {
    for (auto& b : *branch) b->params(nested);
  }
  std::vector<const Param*> out;
  for (Param* p : all) {
    if (p->trainable && std::find(nested.begin(), nested.end(), p) == nested.end()) out.push_back(p);
  }
  return out;
}

// Seq::bwd's order: the layers last to first, a residual's body before its shortcut
// (ResidualOp::bwd), each layer's parameters once its backward is enqueued.
void backward_order_of(std::vector<LayerPtr>& layers, std::vector<const Param*>& out) {
  for (size_t i = layers.size(); i-- > 0;) {
    for (auto* branch : layers[i]->branches()) backward_order_of(*branch, out);
    for (const Param* p : own_trainable(layers[i].get())) out.push_back(p);
  }
}
}  // namespace

std::vector<const Param*> backward_param_order(Model& model) {
  std::vector<const Param*> out;
  backward_order_of(model.layers, out);
  return out;
}

int64_t ff_product(Ctx& c, const SparseWeight& sw, const uint16_t* x, int64_t ld_x, int64_t rows, void* out,
                   bool out_bf16, int64_t ld_out, double* stats) {
  const WeightDev w = c.links->weight(&sw);
  if (sw.ff_sparse(c.method)) return spmm(*w.fwd, x, ld_x, rows, out, out_bf16, ld_out, SpmmKernel::automatic, c.s, stats);
  c.blas->ff(w.dense, sw.cout, sw.k, x, ld_x, rows, out, out_bf16, ld_out);
  return 0;
}

void bp_product(Ctx& c, const SparseWeight& sw, const uint16_t* dy, int64_t rows, void* out, bool out_bf16,
                int64_t ld_out) {
  const WeightDev w = c.links->weight(&sw);
  if (!sw.bp_sparse(c.method)) {
    c.blas->bp(w.dense, sw.cout, sw.k, dy, sw.cout, rows, out, out_bf16, ld_out);
    return;
  }
  const int64_t ldy = padded_len(sw.cout);
  const uint16_t* in = dy;
  if (ldy != sw.cout) {
    pad_rows(dy, rows, sw.cout, c.pad, ldy, c.s);
    in = c.pad;
  }
  spmm(*w.bwd, in, ldy, rows, out, out_bf16, ld_out, SpmmKernel::automatic, c.s);
}


namespace {

using Op = ResidentPlan::Op;
using Seq = ResidentPlan::Seq;

std::unique_ptr<Seq> build_seq(Ctx& c, std::vector<LayerPtr>& layers, const Act& in);

// Where a BatchNorm after a convolution gets its batch statistics: SAT_CUDA_BN_STATS=epilogue (the
// default: from the sparse FF product's epilogue where its kernel gives them, else its own pass)
// or =pass (always its own pass over the activation, for comparisons). Read when a plan is built.
bool bn_stats_from_epilogue() { return env_switch("SAT_CUDA_BN_STATS", "epilogue", "pass", true); }

// How a convolution's BP reaches its input gradient: SAT_CUDA_CONV_BP=transposed (wherever the
// transposed form exists), =col2im (never), unset: transposed where its product's padded tensor
// work is at most twice the col2im path's (a few input channels padded to 128 lines would cost
// more than the col2im it saves).
enum class ConvBp { unset, transposed, col2im };
ConvBp conv_bp_setting() {
  static const ConvBp v = [] {
    const char* e = std::getenv("SAT_CUDA_CONV_BP");
    if (!e || !*e) return ConvBp::unset;
    if (std::string(e) == "transposed") return ConvBp::transposed;
    if (std::string(e) == "col2im") return ConvBp::col2im;
    throw Error(std::string("SAT_CUDA_CONV_BP='") + e + "': expected 'transposed' or 'col2im'");
  }();
  return v;
}

// Whether the transposed BP's product reads dY through the copy engine's im2col mode
// (spmm_implicit) where it can, rather than dY's lowered rows: on since it gave the rows path's
// bits on an H100 and took the ResNet-18 BDWP step at batch 512 from 17.3 to 15.0 ms
// (docs/performance.md, 2026-12-07).
constexpr bool kImplicitBpByDefault = true;

// SAT_CUDA_IMPLICIT=1|0: the implicit product (where it applies) or the rows path, for comparisons;
// unset: kImplicitBpByDefault. Read when a plan is built.
bool implicit_bp_setting() { return env_switch("SAT_CUDA_IMPLICIT", "1", "0", kImplicitBpByDefault); }

// How a strided convolution's BP reaches its input gradient: SAT_CUDA_STRIDED_BP=dilated (the
// transposed convolution over dY dilated by the stride, through the implicit product, where it
// applies) or =col2im (BP's FP32 rows, then col2im); unset: kDilatedBpByDefault, on since its test
// and the whole-step tests passed on an H100 and the ResNet-18 BDWP step at batch 512 measured
// 14.96 and 14.78 ms with it against 14.97 and 15.02 through col2im (docs/performance.md): even at
// worst, and every BP of the model then writes its BF16 input gradient directly. Read when a plan
// is built.
constexpr bool kDilatedBpByDefault = true;
bool dilated_bp_setting() { return env_switch("SAT_CUDA_STRIDED_BP", "dilated", "col2im", kDilatedBpByDefault); }

// Conv2d: im2col (channels-last to the product's rows), the product, the bias epilogue. The lowered
// batch is kept for WU (k*k times the input's memory, a few GiB for ResNet-18 at batch 512, against
// a second im2col per layer and step). BP: for stride 1, the transposed convolution of dY
// (conv_dgrad.cu: W' times dY, read through im2col boxes by the implicit product or lowered into
// rows first, in one product that writes the BF16 input gradient); for a strided convolution the
// same over dY dilated by the stride (sparse BP on the wgmma kernel); otherwise BP's FP32 rows go
// through col2im into the input gradient.
// ViT's patch embedding is the same convolution (kernel = stride = patch, no padding, the same
// (c, ky, kx) column order) whose epilogue adds the position embedding with the bias.
struct ConvOp final : Op {
  Layer* l;
  SparseWeight* sw;
  ConvGeometry g{};
  bool bias = false;
  const float* bias_v = nullptr;
  float* bias_g = nullptr;
  const float* pos_v = nullptr;   // patch_embed: the position embedding [T][dim] and its gradient
  float* pos_g = nullptr;
  int64_t ldk = 0, P = 0;
  uint16_t* col = nullptr;   // the lowered input [P][ldk]
  // transposed BP: W' (the N:M form, or dense BF16 [cin][k*k*cout]) rebuilt from W_B at each BP,
  // dY's lowered rows [nb*h*w][ldt] in the plan's shared c.trows
  bool transposed = false;
  // The BP's product reads dY itself through im2col boxes (spmm_implicit over `ic`): the transposed
  // BP of a stride-1 convolution, or, `dilated`, a strided one's over dY spread onto the stride's
  // grid in c.trows.
  bool implicit = false, dilated = false;
  ImplicitConv ic{};
  DevNM wt{};
  uint16_t* wt_dense = nullptr;
  int64_t ldt = 0;
  bool stats_for_bn = false;   // a BatchNorm follows: its statistics from the FF product's epilogue
  ConvOp(Ctx& c, Layer* layer, bool bn_next) : l(layer) {
    std::vector<SparseWeight*> w;
    l->sparse_weights(w);
    sw = w.at(0);
    const auto a = l->attrs();
    const bool patch = l->type() == "patch_embed";
    g.cin = l->in_shape[0];
    g.h = l->in_shape[1];
    g.w = l->in_shape[2];
    g.k = a[patch ? "patch" : "kernel"].get<int64_t>();
    g.s = patch ? g.k : a["stride"].get<int64_t>();
    g.p = patch ? 0 : a["padding"].get<int64_t>();
    g.oh = g.h / g.s;
    g.ow = g.w / g.s;
    if (!patch) {
      g.oh = l->out_shape[1];
      g.ow = l->out_shape[2];
    }
    bias = patch || a["bias"].get<bool>();
    stats_for_bn = bn_next && !bias;
    const std::vector<Param*> ps = params_of(l);
    if (bias) {
      bias_v = c.links->value(ps.at(1));
      bias_g = c.links->grad(ps.at(1));
    }
    if (patch) {
      pos_v = c.links->value(ps.at(2));
      pos_g = c.links->grad(ps.at(2));
    }
    ldk = padded_len(g.kdim());
    P = c.batch * g.oh * g.ow;
    if (stats_for_bn) c.partial_elems = std::max(c.partial_elems, 2 * spmm_stat_blocks(P) * sw->cout);
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(c.batch * g.h * g.w * g.cin);
    col = c.alloc<uint16_t>(P * ldk);
    c.partial_elems = std::max(c.partial_elems, column_partials(P, sw->cout));
    transposed = !patch && use_transposed(c);
    const bool strided = !patch && !transposed && may_dilate(c);
    ldt = padded_len(g.k * g.k * sw->cout);
    if ((transposed || strided) && sw->bp_sparse(c.method)) {
      wt = alloc_dgrad_form(*c.links->weight(sw).bwd, g);
      ic = dgrad_implicit(g, sw->cout, c.batch);
      // dY and c.trows are cudaMalloc'd, so 16-byte aligned: the image's pointer is a stand-in
      // here, the check is on the geometry and the form
      const bool can = spmm_choice(wt, nullptr, ldt) == SpmmKernel::wgmma && implicit_unusable(wt, nullptr, ic).empty();
      implicit = can && (strided || implicit_bp_setting());
      dilated = strided && can;
      if (strided && !can) {
        free_devnm(wt);   // the strided BP stays on col2im
      } else {
        for (void* p : {static_cast<void*>(wt.values), static_cast<void*>(wt.index), static_cast<void*>(wt.v24),
                        static_cast<void*>(wt.meta24)}) {
          if (p) c.allocs->push_back(p);
        }
      }
    }
    if (dilated) {
      c.trows_elems = std::max(c.trows_elems, ic.nb * ic.ih * ic.iw * ic.ch);
      c.acc_elems = std::max(c.acc_elems, P * sw->cout);
    } else if (transposed) {
      if (!sw->bp_sparse(c.method)) wt_dense = c.alloc<uint16_t>(g.kdim() * sw->cout);
      if (!implicit) c.trows_elems = std::max(c.trows_elems, c.batch * g.h * g.w * ldt);
      c.acc_elems = std::max(c.acc_elems, P * sw->cout);
    } else {
      c.acc_elems = std::max(c.acc_elems, P * std::max(sw->k, sw->cout));
      c.pad_elems = std::max(c.pad_elems, P * padded_len(sw->cout));
    }
  }
  // A strided convolution whose BP may run over the dilated dY: the setting asks for it, a sparse
  // BP (BDWP) whose W_B can be rearranged; the constructor then asks the implicit product.
  bool may_dilate(Ctx& c) const {
    if (!dilated_bp_setting() || conv_bp_setting() == ConvBp::col2im || !strided_dgrad_applies(g)) return false;
    return sw->bp_sparse(c.method) && dgrad_form_unusable(*c.links->weight(sw).bwd, g).empty();
  }
  bool use_transposed(Ctx& c) const {
    const ConvBp set = conv_bp_setting();
    if (set == ConvBp::col2im || !dgrad_applies(g)) return false;
    if (sw->bp_sparse(c.method) && !dgrad_form_unusable(*c.links->weight(sw).bwd, g).empty()) return false;
    if (set == ConvBp::transposed) return true;
    const int64_t kk = g.k * g.k;
    const int64_t work_t = round_up(g.cin, kTileLines) * padded_len(kk * sw->cout);
    const int64_t work_c = round_up(g.kdim(), kTileLines) * padded_len(sw->cout);
    return work_t <= 2 * work_c;
  }
  void fwd(Ctx& c, const Act& x, bool training) override {
    im2col_nhwc(x.p, g, c.batch, col, ldk, c.s);
    c.mark("conv2d FF im2col");
    double* stats = training && stats_for_bn ? c.partial : nullptr;
    const int64_t chunks = ff_product(c, *sw, col, ldk, P, bias ? static_cast<void*>(c.acc) : y.p, !bias, sw->cout, stats);
    c.stats_of = chunks > 0 ? y.p : nullptr;
    c.stats_chunks = chunks;
    c.mark("conv2d FF product");
    if (pos_v) bias_pos_round(c.acc, sw->cout, bias_v, pos_v, c.batch, g.oh * g.ow, sw->cout, y.p, c.s);
    else if (bias) bias_round(c.acc, sw->cout, bias_v, P, sw->cout, y.p, c.s);
  }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool need_dx) override {
    if (bias) bias_grad(dy, P, sw->cout, c.partial, bias_g, c.s);
    if (pos_g) pos_grad(dy, c.batch, g.oh * g.ow, sw->cout, pos_g, c.s);
    c.mark("conv2d bias");
    c.blas->wu(dy, sw->cout, col, ldk, P, sw->cout, sw->k, c.links->weight(sw).grad, false, 1.0f);
    c.mark("conv2d WU product");
    if (!need_dx) return nullptr;
    if (implicit) {   // dY (dilated first where strided) read through im2col boxes: no rows written
      const uint16_t* img = dy;
      if (dilated) {
        dilate_nhwc(dy, g, sw->cout, c.batch, c.trows, c.s);
        c.mark("conv2d BP dilate (strided)");
        img = c.trows;
      }
      dgrad_form(*c.links->weight(sw).bwd, g, wt, c.s);
      spmm_implicit(wt, img, ic, dx, g.cin, c.s);
      c.mark(dilated ? "conv2d BP product (strided, implicit)" : "conv2d BP product (transposed, implicit)");
      return dx;
    }
    if (transposed) {
      dgrad_rows_nhwc(dy, g, sw->cout, c.batch, c.trows, ldt, c.s);
      c.mark("conv2d BP rows (transposed)");
      const int64_t q = c.batch * g.h * g.w;
      const WeightDev w = c.links->weight(sw);
      if (sw->bp_sparse(c.method)) {
        dgrad_form(*w.bwd, g, wt, c.s);
        spmm(wt, c.trows, ldt, q, dx, true, g.cin, SpmmKernel::automatic, c.s);
      } else {
        dgrad_dense(w.dense, g, sw->cout, wt_dense, c.s);
        c.blas->ff(wt_dense, g.cin, g.k * g.k * sw->cout, c.trows, ldt, q, dx, true, g.cin);
      }
      c.mark("conv2d BP product (transposed)");
      return dx;
    }
    bp_product(c, *sw, dy, P, c.acc, false, sw->k);
    c.mark("conv2d BP product");
    col2im_nhwc(c.acc, sw->k, g, c.batch, dx, c.s);
    c.mark("conv2d BP col2im");
    return dx;
  }
};

// Linear over the last dimension (rows = batch x leading dimensions).
struct LinearOp final : Op {
  Layer* l;
  SparseWeight* sw;
  bool bias = false;
  const float* bias_v = nullptr;
  float* bias_g = nullptr;
  int64_t rows = 0, ldx = 0;
  uint16_t* xpad = nullptr;   // the input padded to ldx columns (kept for WU) when in % 64 != 0
  LinearOp(Ctx& c, Layer* layer) : l(layer) {
    std::vector<SparseWeight*> w;
    l->sparse_weights(w);
    sw = w.at(0);
    bias = l->attrs()["bias"].get<bool>();
    if (bias) {
      const std::vector<Param*> ps = params_of(l);
      bias_v = c.links->value(ps.at(1));
      bias_g = c.links->grad(ps.at(1));
    }
    const Act in = act_of(l->in_shape, c.batch);
    rows = in.rows;
    ldx = padded_len(sw->k);
    if (ldx != sw->k) xpad = c.alloc<uint16_t>(rows * ldx);
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(rows * sw->k);
    c.acc_elems = std::max(c.acc_elems, rows * sw->cout);
    c.pad_elems = std::max(c.pad_elems, rows * padded_len(sw->cout));
    c.partial_elems = std::max(c.partial_elems, column_partials(rows, sw->cout));
  }
  const uint16_t* input(const Act& x) const { return xpad ? xpad : x.p; }
  void fwd(Ctx& c, const Act& x, bool) override {
    if (xpad) pad_rows(x.p, rows, sw->k, xpad, ldx, c.s);
    ff_product(c, *sw, input(x), ldx, rows, bias ? static_cast<void*>(c.acc) : y.p, !bias, sw->cout);
    if (bias) bias_round(c.acc, sw->cout, bias_v, rows, sw->cout, y.p, c.s);
  }
  const uint16_t* bwd(Ctx& c, const Act& x, const uint16_t* dy, bool need_dx) override {
    if (bias) bias_grad(dy, rows, sw->cout, c.partial, bias_g, c.s);
    c.blas->wu(dy, sw->cout, input(x), ldx, rows, sw->cout, sw->k, c.links->weight(sw).grad, false, 1.0f);
    if (!need_dx) return nullptr;
    bp_product(c, *sw, dy, rows, dx, true, sw->k);
    return dx;
  }
};

// BatchNorm2d, and with relu = true the ReLU that follows it in one pass each way (the same bits as
// the two apart: layer_ops.hpp): y is then the ReLU's output. SAT_CUDA_BN=cudnn: through cuDNN
// instead (cudnn_bn.hpp; never with a fused ReLU).
struct BatchNormOp final : Op {
  double eps, momentum;
  float *gamma, *beta, *rmean, *rvar, *ggrad, *bgrad;
  double *mean, *invstd;
  int64_t rows, ch;
  bool relu;
  std::unique_ptr<CudnnBatchNorm> dnn;
  float* saved = nullptr;   // cuDNN's batch mean and inverse deviation [2][ch]
  BatchNormOp(Ctx& c, Layer* l, bool with_relu) : relu(with_relu) {
    const auto a = l->attrs();
    eps = a["eps"].get<double>();
    momentum = a["momentum"].get<double>();
    const std::vector<Param*> ps = params_of(l);
    gamma = c.links->value(ps.at(0));
    beta = c.links->value(ps.at(1));
    rmean = c.links->value(ps.at(2));
    rvar = c.links->value(ps.at(3));
    ggrad = c.links->grad(ps.at(0));
    bgrad = c.links->grad(ps.at(1));
    y = c.act(l->out_shape);
    rows = y.rows;
    ch = y.cols;
    dx = c.alloc<uint16_t>(y.n());
    mean = c.alloc<double>(ch);
    invstd = c.alloc<double>(ch);
    c.partial_elems = std::max(c.partial_elems, column_partials(rows, ch));
    if (bn_uses_cudnn()) {
      if (relu) throw Error("backend 'cuda': a BatchNorm with a fused ReLU cannot run on cuDNN");
      dnn = std::make_unique<CudnnBatchNorm>(rows, ch, eps);
      saved = c.alloc<float>(2 * ch);
    }
    if (relu) gate_y = y.p;   // its own ReLU's output gates dy
  }
  void fwd(Ctx& c, const Act& x, bool training) override {
    if (dnn) {
      if (training) dnn->forward_train(x.p, y.p, gamma, beta, momentum, rmean, rvar, saved, saved + ch, c.s);
      else dnn->forward_eval(x.p, y.p, gamma, beta, rmean, rvar, c.s);
      return;
    }
    if (training) {
      // the convolution before gave its output's column partials (ConvOp::stats_for_bn)
      const bool given = c.stats_of == x.p && c.stats_chunks > 0;
      bn_forward_train(x.p, rows, ch, eps, momentum, gamma, beta, rmean, rvar, mean, invstd, c.partial, y.p, c.s,
                       relu, given ? c.stats_chunks : 0);
      c.stats_of = nullptr;
    } else {
      bn_forward_eval(x.p, rows, ch, eps, gamma, beta, rmean, rvar, y.p, c.s, relu);
    }
  }
  const uint16_t* bwd(Ctx& c, const Act& x, const uint16_t* dy, bool) override {
    if (dnn) {
      dnn->backward(x.p, dy, dx, gamma, ggrad, bgrad, saved, saved + ch, c.s);
      return dx;
    }
    bn_backward(x.p, dy, rows, ch, mean, invstd, gamma, ggrad, bgrad, c.partial, dx, c.s, gate_y);
    return dx;
  }
  bool can_gate_dy() const override { return !dnn && !gate_y && bn_relu_fusable(rows, ch, y.p, dx); }
};

struct ReluOp final : Op {
  ReluOp(Ctx& c, Layer* l) {
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(y.n());
  }
  void fwd(Ctx& c, const Act& x, bool) override { relu_forward(x.p, x.n(), y.p, c.s); }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool) override {
    relu_backward(y.p, dy, y.n(), dx, c.s);
    return dx;
  }
};

struct PoolOp final : Op {
  bool max;
  PoolGeometry g{};
  int32_t* argmax = nullptr;
  PoolOp(Ctx& c, Layer* l, bool is_max) : max(is_max) {
    const auto a = l->attrs();
    g = {l->in_shape[0], l->in_shape[1], l->in_shape[2], a["kernel"].get<int64_t>(), a["stride"].get<int64_t>(),
         a["padding"].get<int64_t>(), l->out_shape[1], l->out_shape[2]};
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(c.batch * g.h * g.w * g.c);
    if (max) argmax = c.alloc<int32_t>(y.n());
  }
  void fwd(Ctx& c, const Act& x, bool) override {
    if (max) maxpool_forward(x.p, g, c.batch, y.p, argmax, c.s);
    else avgpool_forward(x.p, g, c.batch, y.p, c.s);
  }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool) override {
    if (max) maxpool_backward(dy, argmax, g, c.batch, dx, c.s);
    else avgpool_backward(dy, g, c.batch, dx, c.s);
    return dx;
  }
};

struct GapOp final : Op {
  int64_t hw, ch;
  GapOp(Ctx& c, Layer* l) {
    ch = l->in_shape[0];
    hw = l->in_shape[1] * l->in_shape[2];
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(c.batch * hw * ch);
  }
  void fwd(Ctx& c, const Act& x, bool) override { gap_forward(x.p, c.batch, hw, ch, y.p, c.s); }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool) override {
    gap_backward(dy, c.batch, hw, ch, dx, c.s);
    return dx;
  }
};

// Flatten of [C, H, W] to C*H*W in the CPU's channel-major order: a permutation of the
// channels-last rows (none when H*W == 1 or the input is already flat).
struct FlattenOp final : Op {
  bool permute = false;
  int64_t ch = 0, hw = 0;
  FlattenOp(Ctx& c, Layer* l, const Act& in) {
    if (l->in_shape.size() == 3 && l->in_shape[1] * l->in_shape[2] > 1 && l->in_shape[0] > 1) {
      permute = true;
      ch = l->in_shape[0];
      hw = l->in_shape[1] * l->in_shape[2];
      y = c.act(l->out_shape);
      dx = c.alloc<uint16_t>(y.n());
    } else {
      y = act_of(l->out_shape, c.batch);
      y.p = in.p;   // same bytes, read as [B][C*H*W]
    }
  }
  void fwd(Ctx& c, const Act& x, bool) override {
    if (permute) nhwc_to_nchw(x.p, c.batch, ch, hw, y.p, c.s);
  }
  const uint16_t* bwd(Ctx& c, const Act&, const uint16_t* dy, bool) override {
    if (!permute) return dy;
    nchw_to_nhwc(dy, c.batch, ch, hw, dx, c.s);
    return dx;
  }
};

// The residual join, and with relu = true the ReLU that follows it: forward in one pass (the add
// writes the ReLU's output); backward, where each branch ends in an operation that gates its dy
// (BatchNorm: can_gate_dy), without the ReLU's pass either: the branches gate the incoming dy
// themselves and an identity shortcut's share joins through add_gated. The same bits as the two
// layers apart.
struct ResidualOp final : Op {
  std::unique_ptr<Seq> body, shortcut;   // shortcut null: identity
  bool relu = false, gated = false;
  uint16_t* g = nullptr;                 // the ReLU's dx where the branches cannot gate
  ResidualOp(Ctx& c, Layer* l, const Act& in, bool with_relu) : relu(with_relu) {
    auto br = l->branches();
    body = build_seq(c, *br.at(0), in);
    if (!br.at(1)->empty()) shortcut = build_seq(c, *br.at(1), in);
    y = c.act(l->out_shape);
    dx = c.alloc<uint16_t>(in.n());
    if (!relu) return;
    gated = !body->ops.empty() && body->ops.back()->can_gate_dy() &&
            (!shortcut || (!shortcut->ops.empty() && shortcut->ops.back()->can_gate_dy()));
    if (gated) {
      body->ops.back()->gate_y = y.p;
      if (shortcut) shortcut->ops.back()->gate_y = y.p;
    } else {
      g = c.alloc<uint16_t>(y.n());
    }
  }
  void fwd(Ctx& c, const Act& x, bool training) override {
    body->fwd(c, training);
    if (shortcut) shortcut->fwd(c, training);
    add_round(body->out.p, shortcut ? shortcut->out.p : x.p, y.n(), y.p, c.s, relu);
  }
  const uint16_t* bwd(Ctx& c, const Act& x, const uint16_t* dy, bool) override {
    if (relu && !gated) {
      relu_backward(y.p, dy, y.n(), g, c.s);
      dy = g;
    }
    const uint16_t* gb = body->bwd(c, dy, false);
    if (gated && !shortcut) {
      add_gated(gb, dy, y.p, x.n(), dx, c.s);
      return dx;
    }
    const uint16_t* gs = shortcut ? shortcut->bwd(c, dy, false) : dy;
    add_round(gb, gs, x.n(), dx, c.s);
    return dx;
  }
};

// SAT_CUDA_FUSE=0 keeps every ReLU apart from the BatchNorm or residual add before it (for
// comparisons); anything else but 1 is refused. Read when a plan is built.
bool fuse_relu() { return env_switch("SAT_CUDA_FUSE", "1", "0", true); }

std::unique_ptr<Seq> build_seq(Ctx& c, std::vector<LayerPtr>& layers, const Act& in) {
  auto seq = std::make_unique<Seq>();
  Act cur = in;
  for (size_t li = 0; li < layers.size(); ++li) {
    Layer* l = layers[li].get();
    const std::string t = l->type();
    std::unique_ptr<Op> op;
    // a BatchNorm followed by a ReLU runs as one operation where the 16-byte kernels take it
    const bool relu_next = li + 1 < layers.size() && layers[li + 1]->type() == "relu" && fuse_relu();
    const bool bn_relu = t == "batchnorm2d" && relu_next && l->out_shape.size() == 3 && l->out_shape[0] % 8 == 0 &&
                         !bn_uses_cudnn();
    const bool res_relu = t == "residual" && relu_next;
    const bool bn_next = li + 1 < layers.size() && layers[li + 1]->type() == "batchnorm2d" && !bn_uses_cudnn() &&
                         bn_stats_from_epilogue();
    if (t == "conv2d" || t == "patch_embed") op = std::make_unique<ConvOp>(c, l, t == "conv2d" && bn_next);
    else if (t == "linear") op = std::make_unique<LinearOp>(c, l);
    else if (t == "batchnorm2d") op = std::make_unique<BatchNormOp>(c, l, bn_relu);
    else if (t == "relu") op = std::make_unique<ReluOp>(c, l);
    else if (t == "maxpool2d") op = std::make_unique<PoolOp>(c, l, true);
    else if (t == "avgpool2d") op = std::make_unique<PoolOp>(c, l, false);
    else if (t == "global_avgpool") op = std::make_unique<GapOp>(c, l);
    else if (t == "flatten") op = std::make_unique<FlattenOp>(c, l, cur);
    else if (t == "residual") op = std::make_unique<ResidualOp>(c, l, cur, res_relu);
    else op = make_transformer_op(c, l, cur);
    if (!op) throw Error("backend 'cuda': layer " + l->name + " (" + t + ") has no GPU-resident implementation");
    // static names for the profile (SAT_CUDA_PROFILE)
    static const std::map<std::string, std::pair<const char*, const char*>> kNames = {
        {"conv2d", {"conv2d FF epilogue", "conv2d BP rest"}},   {"linear", {"linear FF", "linear BP+WU"}},
        {"batchnorm2d", {"batchnorm2d FF", "batchnorm2d BP"}}, {"relu", {"relu FF", "relu BP"}},
        {"maxpool2d", {"maxpool2d FF", "maxpool2d BP"}},       {"avgpool2d", {"avgpool2d FF", "avgpool2d BP"}},
        {"global_avgpool", {"global_avgpool FF", "global_avgpool BP"}},
        {"flatten", {"flatten FF", "flatten BP"}},             {"residual", {"residual add FF", "residual add BP"}},
        {"patch_embed", {"patch_embed FF epilogue", "patch_embed BP rest"}},
        {"layernorm", {"layernorm FF", "layernorm BP"}},       {"gelu", {"gelu FF", "gelu BP"}},
        {"token_mean", {"token_mean FF", "token_mean BP"}},    {"attention", {"attention FF rest", "attention BP rest"}}};
    op->fwd_name = bn_relu ? "batchnorm2d+relu FF" : res_relu ? "residual add+relu FF" : kNames.at(t).first;
    op->bwd_name = bn_relu ? "batchnorm2d+relu BP" : res_relu ? "residual add+relu BP" : kNames.at(t).second;
    op->params = own_trainable(l);
    if (bn_relu || res_relu) ++li;   // the ReLU is done
    seq->ins.push_back(cur);
    cur = op->y;
    seq->ops.push_back(std::move(op));
  }
  seq->out = cur;
  return seq;
}

}  // namespace

ResidentPlan::ResidentPlan(Model& model, int64_t batch, Method method, const ResidentLinks& links, Blas& blas,
                           cudaStream_t stream)
    : batch_(batch), stream_(stream) {
  ctx_ = std::make_unique<Ctx>(Ctx{batch, method, &links, &blas, stream, &allocations_});
  Ctx& c = *ctx_;
  const char* prof = std::getenv("SAT_CUDA_PROFILE");
  c.prof = prof && prof[0] != '0';
  try {
    input_elems_ = batch * sat::numel(model.input);
    input_ = c.alloc<uint16_t>(input_elems_);
    labels_ = c.alloc<int>(batch);
    loss_ = c.alloc<double>(1);
    correct_ = c.alloc<int>(1);
    Act in = act_of(model.input, batch);
    if (model.input.size() == 3 && model.input[0] > 1 && model.input[1] * model.input[2] > 1) {
      permute_input_ = true;
      in_c_ = model.input[0];
      in_hw_ = model.input[1] * model.input[2];
      input_nhwc_ = c.alloc<uint16_t>(input_elems_);
      in.p = input_nhwc_;
    } else {
      in.p = input_;
    }
    top_ = build_seq(c, model.layers, in);
    classes_ = top_->out.cols;
    if (top_->out.rows != batch) throw Error("backend 'cuda': the model's output is not [batch, classes]");
    logits32_ = c.alloc<float>(batch * classes_);
    dlogits32_ = c.alloc<float>(batch * classes_);
    dlogits_ = c.alloc<uint16_t>(batch * classes_);
    row_loss_ = c.alloc<double>(batch);
    row_correct_ = c.alloc<int>(batch);
    c.acc = c.alloc<float>(c.acc_elems);
    c.pad = c.alloc<uint16_t>(c.pad_elems);
    c.trows = c.alloc<uint16_t>(c.trows_elems);
    c.partial = c.alloc<double>(c.partial_elems);
  } catch (...) {
    for (void* p : allocations_) cudaFree(p);
    allocations_.clear();
    throw;
  }
}

ResidentPlan::~ResidentPlan() {
  if (ctx_ && ctx_->prof && ctx_->profiled_steps() > 0) {
    const int steps = ctx_->profiled_steps();
    double total = 0;
    for (auto& [k, v] : ctx_->prof_ms) total += v;
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [k, v] : ctx_->prof_ms) rows.push_back({v, k});
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr,
                 "cuda resident profile (SAT_CUDA_PROFILE), batch %lld: %d training steps after the first %d, %.2f ms "
                 "of device work per step\n",
                 static_cast<long long>(batch_), steps, Ctx::kProfSkip, total / steps);
    for (auto& [v, k] : rows) std::fprintf(stderr, "  %8.3f ms  %5.1f%%  %s\n", v / steps, 100 * v / total, k.c_str());
  }
  if (ctx_ && ctx_->last) cudaEventDestroy(ctx_->last);
  top_.reset();
  for (void* p : allocations_) cudaFree(p);
}

void ResidentPlan::forward(bool training) {
  if (training) ++ctx_->prof_steps;
  ctx_->mark("(between steps: update, pre-generation, copies)");
  if (permute_input_) nchw_to_nhwc(input_, batch_, in_c_, in_hw_, input_nhwc_, stream_);
  ctx_->mark("input to channels-last");
  top_->fwd(*ctx_, training);
}

void ResidentPlan::loss_and_grad(bool training) {
  const int64_t n = batch_ * classes_;
  bf16_rows_to_f32(top_->out.p, n, logits32_, stream_);
  softmax_xent(logits32_, labels_, batch_, classes_, training ? dlogits32_ : nullptr, row_loss_, row_correct_, stream_);
  if (training) f32_to_bf16(dlogits32_, n, dlogits_, stream_);
  loss_sum(row_loss_, row_correct_, batch_, loss_, correct_, stream_);
  ctx_->mark("loss");
}

void ResidentPlan::backward() { top_->bwd(*ctx_, dlogits_, true); }

}  // namespace sat::cuda
