// UPD unit: SGD with momentum, weight decay and the SR-STE term on FP32 master weights, in place,
// by the rule every backend shares (sat/sgd_rule.hpp):
//   gi = g + (b0 ? wd : 0) * w;  gi += (b1 and w not kept by W_F) ? lambda * w : 0
//   v = mu * v + gi;  w -= lr * v
// hyper = FP32 [lr, momentum, weight_decay, srste_lambda]. "Kept" comes from W_F's packed in-group
// indices (idx_addr; groups of m along rows of length k). Non-finite results are counted into
// status word 3 (the host reports divergence from it).
#include "kernel.hpp"
#include "sat/arch/sgd_rule.hpp"

namespace sat::kernel {

bool exec_upd(Ctx& cx, const Insn& in) {
  namespace f = isa::f_SGD;
  if (in.opcode() != isa::OP_SGD) return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  const bool decay = in.flag(0), srste = in.flag(1);
  const uint64_t count = in[f::count];
  const uint32_t n = in[f::n], m = in[f::m], k = in[f::k];
  if (srste) {
    if (!arch::supported_m(static_cast<int>(m))) return cx.bad_field(in, f::m);
    if (n == 0 || n > m) return cx.bad_field(in, f::n, m);
    if (k == 0 || k % m != 0) return cx.bad_field(in, f::k, m);
    if (count % k != 0) return cx.bad_field(in, f::count, k);
  }
  DdrOut w = region(cx, in, f::w, 2 * count);
  if (w == nullptr) return false;
  DdrOut v = region(cx, in, f::v, 2 * count);
  if (v == nullptr) return false;
  DdrIn g = region(cx, in, f::g, 2 * count);
  if (g == nullptr) return false;
  DdrIn hp = region(cx, in, f::hyper, 8);
  if (hp == nullptr) return false;
  const SgdHyper h{ld_f32(hp, 0), ld_f32(hp, 1), decay ? ld_f32(hp, 2) : 0.0f, ld_f32(hp, 3)};
  DdrIn idx = nullptr;
  if (srste && count > 0) {
    idx = region(cx, in, f::idx_addr, ((count / m * n) + 3) / 4);
    if (idx == nullptr) return false;
  }
  uint32_t bad = 0;
  const uint64_t groups = srste ? count / m : 1;
  const uint64_t glen = srste ? m : count;
  const bool masked = srste && n < m;
  // Every operand is walked once in order: w and v are read ahead and written behind (in place),
  // and the groups' index entries are consecutive ((row * k/m + g) == gr).
  DdrReader<1> w_in(w, 2 * count);
  DdrReader<2> v_in(v, 2 * count);
  DdrReader<3> g_in(g, 2 * count);
  NibbleReader<4> nibs(idx, 0, masked ? groups * n : 0);
  DdrWriter<1> w_out(w, 2 * count);
  DdrWriter<2> v_out(v, 2 * count);
SGD_GROUPS:
  for (uint64_t gr = 0; gr < groups; ++gr) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
    uint32_t keep = ~0u;
    if (masked) {
      keep = 0;
      for (uint32_t j = 0; j < n; ++j) keep |= 1u << nibs.next();
    }
SGD_ELEMS:
    for (uint64_t t = 0; t < glen; ++t) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 2 max = 4096
      float vi = next_f32(v_in);
      const float wi = next_f32(w_in);
      const float wn = sgd_rule(wi, next_f32(g_in), vi, srste && !((keep >> t) & 1u), h);
      put_f32(v_out, vi);
      put_f32(w_out, wn);
      bad += sgd_finite(wn) ? 0u : 1u;
    }
  }
  cx.nonfinite += bad;
  return true;
}

}  // namespace sat::kernel
