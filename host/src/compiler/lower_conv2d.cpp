// conv2d over NHWC activations as an implicit-im2col product (P = B*OH*OW rows, K = Cin*kh*kw in
// (cin, ky, kx) order, the CPU's W[Cout][K]).
//   FF: A = im2col(X) fetched by LD_CONV, B = W_F / W; bias added by the store.
//   BP: stride 1, square kernel: dX = conv(dY, W flipped), dY's windows tap-major (LD_CONV b2)
//       against W_B's lines of each input channel, dX stored directly. Otherwise dcol[P][K] = dY W,
//       scattered back by ST_COL2IM into an FP32 NHWC scratch (zeroed first) and rounded to BF16
//       by V_CONVERT; a 1x1, stride-1, unpadded convolution stores dX directly. Stride 2: one
//       stride-1 convolution of dY per output parity (phase_bp), stored into every second row
//       and column of dX.
//   WU: dW = dY^T im2col(X) (A = dY read transposed, B = the transposed im2col); db = column sums.
#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

namespace {

class Conv2dLowering final : public LayerLowering {
 public:
  TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) override {
    g_ = window_geom(lw, layer, attr_int(lw, layer, "kernel"), attr_int(lw, layer, "stride"),
                     attr_int(lw, layer, "padding"));
    cout_ = attr_int(lw, layer, "out");
    bias_ = lw.param(layer, ".bias");
    std::vector<SparseWeight*> ws;
    layer.sparse_weights(ws);
    if (ws.size() != 1) lw.fail("has no weight parameter");
    sw_ = ws[0];
    if (sw_->k != g_.c * g_.kh * g_.kw || sw_->cout != cout_) {
      lw.fail("weight shape [" + std::to_string(sw_->cout) + ", " + std::to_string(sw_->k) +
              "] does not match the convolution's geometry");
    }
    p_ = static_cast<int64_t>(lw.batch()) * g_.oh * g_.ow;
    x_ = x;
    const TensorRef y = lw.alloc(layer.name + ".out", RegionKind::activation,
                                 dram_shape(lw.batch(), layer.out_shape));
    lw.ff_product(sw_, Operand::conv_rows(x, g_), p_, bias_output(lw, y, bias_, cout_));
    return y;
  }

  TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) override {
    if (bias_) bias_grad(lw, bias_, dy, p_, cout_);
    const bool direct = g_.kh == 1 && g_.kw == 1 && g_.stride == 1 && g_.pad == 0;
    const bool phases = need_dx && lw.bp_as_phases(sw_, g_);   // stride 2: never direct nor a stride-1 BP conv
    const Shape xs = dram_shape(lw.batch(), layer.in_shape);
    TensorRef dx;
    if (phases) {
      // Allocated, and its parities no tap reaches zeroed by the store unit, before the WU
      // product: the zeros go out while the PE array computes dW.
      dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, xs);
      zero_empty_phases(lw, dx);
    }
    lw.wu_product(sw_, Operand::rows(dy, 1, cout_), Operand::conv_cols(x_, g_), p_);
    if (!need_dx) return {};
    if (phases) {
      phase_bp(lw, dy, dx);
      return dx;
    }
    dx = lw.alloc(layer.name + ".dx", RegionKind::gradient, xs);
    if (direct) {
      lw.bp_product(sw_, Operand::rows(dy, cout_), p_, Output::rows(dx, g_.c));
      return dx;
    }
    if (lw.bp_as_convolution(sw_, g_)) {
      // dX = conv(dY, W flipped): dY [B][oh][ow][cout] through a kh x kw window padded kh-1-pad,
      // whose outputs are dX's h x w positions (stride 1).
      const ConvGeom gb = dy_window(g_.kh, g_.kw, g_.kh - 1 - g_.pad, g_.h, g_.w);
      const int64_t p_in = static_cast<int64_t>(lw.batch()) * g_.h * g_.w;
      lw.bp_conv_product(sw_, Operand::conv_bp(dy, gb), p_in, g_.kh * g_.kw, Output::rows(dx, g_.c));
      return dx;
    }
    const TensorRef acc = lw.alloc(layer.name + ".dx_f32", RegionKind::gradient, xs, DType::f32);
    zero_f32(lw, acc);
    lw.bp_product(sw_, Operand::rows(dy, cout_), p_, Output::col2im(acc, g_));
    convert_to_bf16(lw, acc, dx);
    return dx;
  }

 private:
  // dY [B][oh][ow][cout] through a stride-1 kh x kw window (read flipped, LD_CONV b2) with padding
  // `pad`, giving oh' x ow' outputs: the A operand's geometry of a BP convolution of dY.
  ConvGeom dy_window(int kh, int kw, int pad, int64_t oh, int64_t ow) const {
    ConvGeom gb;
    gb.c = cout_;
    gb.h = g_.oh;
    gb.w = g_.ow;
    gb.kh = kh;
    gb.kw = kw;
    gb.stride = 1;
    gb.pad = pad;
    gb.oh = oh;
    gb.ow = ow;
    return gb;
  }

  // dX (b, 2i + py, 2j + px) of parity (py, px), as rows (b*oh' + i)*ow' + j in lines of ow'
  // (ST_2D b3; h even, so line L starts 2*L image rows in).
  Output phase_output(const TensorRef& dx, int py, int px) const {
    const int64_t ow = (g_.w - px + 1) / 2, row = static_cast<int64_t>(g_.w) * g_.c;
    return Output::lines(dx, (py * static_cast<int64_t>(g_.w) + px) * g_.c, ow, 2 * row, 2 * g_.c);
  }
  int64_t phase_rows(const Lowering& lw, int py, int px) const {
    return static_cast<int64_t>(lw.batch()) * ((g_.h - py + 1) / 2) * ((g_.w - px + 1) / 2);
  }

  // The parities of dX no tap reaches (a 1x1 kernel's odd rows and columns): zeros.
  void zero_empty_phases(Lowering& lw, const TensorRef& dx) {
    const int n[2] = {phase_taps_1d(g_.kh, g_.pad, 0).count, phase_taps_1d(g_.kh, g_.pad, 1).count};
    for (int py = 0; py < 2; ++py)
      for (int px = 0; px < 2; ++px)
        if (n[py] == 0 || n[px] == 0) lw.zero_output(phase_output(dx, py, px), phase_rows(lw, py, px), g_.c);
  }

  // dX of a stride-2 convolution as four stride-1 convolutions of dY, one per output parity
  // (py, px): each with the sub-kernel of the taps that reach that parity, its rows stored into
  // every second row and column of dX (ST_2D b3). Parities no tap reaches (a 1x1 kernel's odd
  // ones) keep the zeros backward() stored.
  void phase_bp(Lowering& lw, const TensorRef& dy, const TensorRef& dx) {
    const int k = g_.kh;
    const PhaseTaps par[2] = {phase_taps_1d(k, g_.pad, 0), phase_taps_1d(k, g_.pad, 1)};
    // The parity with more taps first (a 3x3's odd rows take taps 0 and 2): the patch the first
    // phase of a row tile reads then covers the others' (the pads agree, bp_as_phases). With h and
    // w even every phase has the same positions and the phases share row tiles; otherwise each
    // runs on its own. (Covering is an optimisation only: the scheduler reloads any patch that
    // the held one does not cover.)
    const bool shared = g_.w % 2 == 0;
    const int big = par[1].count >= par[0].count ? 1 : 0;
    const int order[2] = {big, 1 - big};
    std::vector<Lowering::BpPhase> phases;
    int64_t p_in = 0;
    for (const int py : order) {
      for (const int px : order) {
        const PhaseTaps& ty = par[py];
        const PhaseTaps& tx = par[px];
        if (ty.count == 0 || tx.count == 0) continue;
        // Its outputs are dX's positions of the phase; ty.pad == tx.pad (bp_as_phases).
        const ConvGeom gb = dy_window(ty.count, tx.count, ty.pad, (g_.h - py + 1) / 2, (g_.w - px + 1) / 2);
        Lowering::BpPhase ph;
        ph.a = Operand::conv_bp(dy, gb);
        for (int jy = 0; jy < ty.count; ++jy)   // the window's taps in its K order (jy, jx), as taps of W
          for (int jx = 0; jx < tx.count; ++jx) ph.taps.push_back((ty.first + 2 * jy) * k + tx.first + 2 * jx);
        ph.dx = phase_output(dx, py, px);
        p_in = phase_rows(lw, py, px);
        if (shared) {
          phases.push_back(std::move(ph));
        } else {
          lw.bp_phase_products(sw_, p_in, k * k, {ph});
        }
      }
    }
    if (!phases.empty()) lw.bp_phase_products(sw_, p_in, k * k, phases);
  }

  ConvGeom g_;
  int64_t cout_ = 0, p_ = 0;
  Param* bias_ = nullptr;
  SparseWeight* sw_ = nullptr;
  TensorRef x_;
};

}  // namespace

std::unique_ptr<LayerLowering> make_conv2d_lowering() { return std::make_unique<Conv2dLowering>(); }

}  // namespace sat::compiler
