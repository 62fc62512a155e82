#pragma once
// The optimizer's per-weight rule (DESIGN §3), dependency-free so that every implementation compiles
// the same code: the host library (host/src/optimizer.cpp), the HLS kernel's UPD unit and the CUDA
// kernels (the update alone and the update fused with pre-generation):
//   g' = g + wd * w;  g' += lambda * w where FF prunes w (SR-STE);  v = mu * v + g';  w -= lr * v
// Each line is one fused multiply-add, written out: compilers otherwise decide for themselves
// (g++ -march=native contracts a*b + c into an FMA, nvcc contracts by default, neither without
// FMA hardware), and the backends would then differ in the last bit. Spelled as FMAs, the same
// gradients give the same weights bit for bit on every backend.
#include <cmath>

#include "sat/arch/hd.hpp"

namespace sat {

struct SgdHyper {
  float lr = 0, mu = 0;
  float wd = 0;       // 0 for parameters without weight decay
  float lambda = 0;   // the SR-STE coefficient; applied only where `pruned`
};

// a * b + c rounded once.
SAT_HD inline float sgd_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// One weight: updates the momentum v in place and returns the new weight. `pruned`: FF's mask does
// not keep this weight (only SR-STE passes true).
SAT_HD inline float sgd_rule(float w, float g, float& v, bool pruned, const SgdHyper& h) {
  float gi = sgd_fma(h.wd, w, g);
  if (pruned) gi = sgd_fma(h.lambda, w, gi);
  v = sgd_fma(h.mu, v, gi);
  return sgd_fma(-h.lr, v, w);
}

// Whether an updated weight is finite (the backends report divergence from it).
SAT_HD inline bool sgd_finite(float w) { return (f32_bits(w) & 0x7f800000u) != 0x7f800000u; }

}  // namespace sat
