// The CPU kernels, once per SIMD path: Highway compiles this file again for each target it names
// (foreach_target.h re-includes it with HWY_TARGET set), and the functions at the end pick the
// best one this CPU runs on its first call (HWY_DYNAMIC_DISPATCH). libsat itself is built for the
// x86-64 baseline, so one binary runs on any x86-64 machine.
//
// Paths: AVX3 (AVX-512 F/BW/DQ/VL, "avx512"), AVX2 (with FMA, BMI2, F16C: "avx2") and the
// baseline ("portable": Highway's scalar target). SSSE3 and SSE4 are not built: they have no FMA,
// so they could only run the portable path's scalar std::fma, which the baseline already is.
//
// Bit-identical results across paths: the spmm micro-kernel accumulates every output element
// from 0 (or from out) by one fused multiply-add per kept weight, in (g, j) order, whatever the
// vector width; the portable path calls std::fma for the same terms. The element-wise kernels
// (pre-generation, the update, BF16 conversion) run the shared scalar rules of sat/arch/, which
// are exact per element; here they are only inlined (flatten) into code compiled for the path,
// so that the compiler vectorises them with its instructions (std::fma becomes one vfmadd).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/simd.cpp"
#include "cpu/simd_targets.hpp"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include <cstdlib>

#include "cpu/simd.hpp"
#include "sat/arch/nm_select.hpp"
#include "sat/error.hpp"

HWY_BEFORE_NAMESPACE();
namespace sat::cpu::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#define SAT_FLATTEN __attribute__((flatten))

#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
// ---- portable: plain arrays, one std::fma per term (correctly rounded on every CPU; a library
// call where the CPU has no FMA instruction, which is what makes this path slow but exact).
constexpr int kVec = 4;                  // floats per "vector": the panel is 4 x 4 = 16 columns
constexpr int kPanelVecs = 4;
constexpr int kLines = 4;

template <int C, int N>
void Micro(const Tile& t) {
  constexpr int W = C * kVec;
  constexpr int kPanel = kVec * kPanelVecs;
  float acc[kLines][W];
  for (int r = 0; r < kLines; ++r)
    for (int q = 0; q < W; ++q) acc[r][q] = t.zero_init ? 0.0f : t.out[r][q];
  const int n = N > 0 ? N : t.n;
  for (int64_t g = 0; g < t.ng; ++g) {
    const float* gb = t.buf + g * t.m * kPanel;
    for (int r = 0; r < kLines; ++r) {
      for (int j = 0; j < n; ++j) {
        const float v = t.vals[r][g * n + j];
        const float* row = gb + t.idx[r][g * n + j] * kPanel;
        for (int q = 0; q < W; ++q) acc[r][q] = std::fma(v, row[q], acc[r][q]);
      }
    }
  }
  for (int r = 0; r < t.nr; ++r)
    for (int q = 0; q < W; ++q) t.out[r][q] = acc[r][q];
}

// Dense lines (M = 1): the portable path has no loads to save.
template <int C>
void MicroDense(const Tile& t) {
  Micro<C, 1>(t);
}
#else
// ---- vector paths: a register block of kLines lines x C vectors of accumulators. Each kept
// weight is one broadcast and C FMAs with the packed input row g * M + index (an axpy, no
// gather). Loads limit it (each FMA reads its row from L1), so the in-group indices of 8 / N
// groups of a line come in one 64-bit load (N = 1, 2, 4). AVX-512 has 32 vector registers:
// 6 x 4 accumulators; AVX2 has 16: 3 x 4.
constexpr int kVec = static_cast<int>(HWY_LANES(float));
constexpr int kPanelVecs = 4;
#if HWY_TARGET <= HWY_AVX3
constexpr int kLines = 6;
#else
constexpr int kLines = 3;
#endif

// Prefetches one input row segment (toward L2) for a later pack.
inline void PrefetchRow(const char* p, int bytes) {
  for (int b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 2);
  __builtin_prefetch(p + bytes - 1, 0, 2);
}

template <int C, int N>
void Micro(const Tile& t) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  constexpr int R = kLines;
  constexpr int64_t kRowBytes = kVec * kPanelVecs * sizeof(float);
  V acc[R][C];
  const float* vp[R];
  const uint8_t* ip[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    vp[r] = t.vals[r];
    ip[r] = t.idx[r];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      acc[r][c] = t.zero_init ? hn::Zero(d) : hn::LoadU(d, t.out[r] + c * kVec);
  }
  const char* gb = reinterpret_cast<const char*>(t.buf);
  const int64_t gstride = t.m * kRowBytes;
  const int n = N > 0 ? N : t.n;
  int64_t g = 0;
  const char* pf = t.pf;
  int64_t pf_left = t.pf_rows;
  if constexpr (N > 0) {
    constexpr int U = 8 / N;  // groups per 64-bit index word
    const int64_t iters = std::max<int64_t>(1, t.ng / U);
    const int64_t pf_per_iter = (pf_left + iters - 1) / iters;
    for (; g + U <= t.ng; g += U) {
      for (int64_t i = 0; i < pf_per_iter && pf_left > 0; ++i, --pf_left, pf += t.pf_ld)
        PrefetchRow(pf, t.pf_bytes);
      uint64_t words[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) std::memcpy(&words[r], ip[r] + g * N, sizeof(uint64_t));
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) {
        const char* base = gb + u * gstride;
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
          for (int j = 0; j < N; ++j) {
            const uint32_t index = static_cast<uint32_t>(words[r] >> (8 * (u * N + j))) & 0xFFu;
            const float* row = reinterpret_cast<const float*>(base + index * kRowBytes);
            const V v = hn::Set(d, vp[r][(g + u) * N + j]);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c)
              acc[r][c] = hn::MulAdd(v, hn::Load(d, row + c * kVec), acc[r][c]);
          }
        }
      }
      gb += U * gstride;
    }
  }
  for (; pf_left > 0; --pf_left, pf += t.pf_ld) PrefetchRow(pf, t.pf_bytes);
  for (; g < t.ng; ++g) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < n; ++j) {
        const float* row =
            reinterpret_cast<const float*>(gb + static_cast<uint32_t>(ip[r][g * n + j]) * kRowBytes);
        const V v = hn::Set(d, vp[r][g * n + j]);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
          acc[r][c] = hn::MulAdd(v, hn::Load(d, row + c * kVec), acc[r][c]);
      }
    }
    gb += gstride;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (r >= t.nr) break;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) hn::StoreU(acc[r][c], d, t.out[r] + c * kVec);
  }
}

// Dense lines (M = 1, so every index is 0: the dense WU of a convolution): every line of a group
// reads the same input row, so each row vector is loaded once for all the block's lines, where
// Micro<C, 1> loads it again per line and the loads bound it. Each accumulator gets the same FMAs
// in the same order: the same bits. The block's broadcasts are taken first, then one row vector
// at a time, so that AVX2's 16 registers hold 3 x 4 accumulators, 3 weights and the vector.
template <int C>
void MicroDense(const Tile& t) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  constexpr int R = kLines;
  constexpr int64_t kRow = kVec * kPanelVecs;
  V acc[R][C];
  const float* vp[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    vp[r] = t.vals[r];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      acc[r][c] = t.zero_init ? hn::Zero(d) : hn::LoadU(d, t.out[r] + c * kVec);
  }
  const float* row = t.buf;
  const char* pf = t.pf;
  int64_t pf_left = t.pf_rows;
  const int64_t pf_per_group = (pf_left + std::max<int64_t>(1, t.ng) - 1) / std::max<int64_t>(1, t.ng);
  for (int64_t g = 0; g < t.ng; ++g, row += kRow) {
    for (int64_t i = 0; i < pf_per_group && pf_left > 0; ++i, --pf_left, pf += t.pf_ld)
      PrefetchRow(pf, t.pf_bytes);
    V v[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) v[r] = hn::Set(d, vp[r][g]);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const V x = hn::Load(d, row + c * kVec);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = hn::MulAdd(v[r], x, acc[r][c]);
    }
  }
  for (; pf_left > 0; --pf_left, pf += t.pf_ld) PrefetchRow(pf, t.pf_bytes);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (r >= t.nr) break;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) hn::StoreU(acc[r][c], d, t.out[r] + c * kVec);
  }
}
#endif

template <int C>
MicroFn PickN(int n, int m) {
  if (n == 1 && m == 1) return MicroDense<C>;
  switch (n) {
    case 1: return Micro<C, 1>;
    case 2: return Micro<C, 2>;
    case 4: return Micro<C, 4>;
    default: return Micro<C, 0>;
  }
}

template <int C = 1>
MicroFn PickC(int vecs, int n, int m) {
  if constexpr (C < kPanelVecs) {
    if (vecs > C) return PickC<C + 1>(vecs, n, m);
  }
  return PickN<C>(n, m);
}

SpmmKernel SpmmKernelImpl() {
  static_assert(kLines <= kMaxLines);
  return SpmmKernel{kVec, kPanelVecs, kLines, &PickC<1>};
}

// ---- pre-generation. Lanes of nm_keep_masks are neighbouring groups: along Cout 16 neighbouring
// lines (16 neighbouring floats of a row of W), along K the same group of 16 neighbouring rows.
template <int kM>
SAT_FLATTEN void SelectLines(const float* w, int64_t cout, int64_t k, int n, int m, bool along_k,
                             bool round, int64_t l0, int64_t l1, float* values, uint8_t* index) {
  constexpr int kLanes = 16;
  const int64_t groups = (along_k ? k : cout) / m;
  const long stride = along_k ? 1 : static_cast<long>(k);
  auto emit = [&](int64_t l, int64_t g, uint32_t keep) {
    const float* group = along_k ? w + l * k + g * m : w + g * m * k + l;
    const int64_t e = (l * groups + g) * n;
    nm_indices_of(keep, n, index + e);
    for (int j = 0; j < n; ++j) {
      const float v = group[index[e + j] * stride];
      values[e + j] = round ? round_bf16(v) : v;
    }
  };
  uint32_t keep[kLanes];
  if (along_k) {
    for (int64_t lb = l0; lb < l1; lb += kLanes) {
      const int64_t le = std::min(l1, lb + kLanes);
      for (int64_t g = 0; g < groups; ++g) {
        if (le - lb == kLanes) {
          nm_keep_masks<kM, kLanes>(w + lb * k + g * m, 1, static_cast<long>(k), m, n, keep);
          for (int lane = 0; lane < kLanes; ++lane) emit(lb + lane, g, keep[lane]);
        } else {
          for (int64_t l = lb; l < le; ++l) {
            nm_keep_masks<kM, 1>(w + l * k + g * m, 1, 0, m, n, keep);
            emit(l, g, keep[0]);
          }
        }
      }
    }
    return;
  }
  for (int64_t g = 0; g < groups; ++g) {
    int64_t l = l0;
    for (; l + kLanes <= l1; l += kLanes) {
      nm_keep_masks<kM, kLanes>(w + g * m * k + l, stride, 1, m, n, keep);
      for (int lane = 0; lane < kLanes; ++lane) emit(l + lane, g, keep[lane]);
    }
    for (; l < l1; ++l) {
      nm_keep_masks<kM, 1>(w + g * m * k + l, stride, 0, m, n, keep);
      emit(l, g, keep[0]);
    }
  }
}

void NmSelectLinesImpl(const float* w, int64_t cout, int64_t k, int n, int m, bool along_k,
                       bool round, int64_t l0, int64_t l1, float* values, uint8_t* index) {
  switch (m) {  // the supported group sizes get unrolled selections
    case 4: return SelectLines<4>(w, cout, k, n, m, along_k, round, l0, l1, values, index);
    case 8: return SelectLines<8>(w, cout, k, n, m, along_k, round, l0, l1, values, index);
    case 16: return SelectLines<16>(w, cout, k, n, m, along_k, round, l0, l1, values, index);
    default: return SelectLines<0>(w, cout, k, n, m, along_k, round, l0, l1, values, index);
  }
}

// ---- the update and the BF16 conversions: the shared scalar rules, vectorised per path.
SAT_FLATTEN void SgdRangeImpl(float* w, float* v, const float* g, const uint8_t* mask, int64_t n,
                              const SgdHyper& h) {
  if (mask) {
    for (int64_t i = 0; i < n; ++i) w[i] = sgd_rule(w[i], g[i], v[i], !mask[i], h);
  } else {
    for (int64_t i = 0; i < n; ++i) w[i] = sgd_rule(w[i], g[i], v[i], false, h);
  }
}

SAT_FLATTEN void ToBf16Impl(const float* in, bf16* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i].bits = f32_to_bf16_bits(in[i]);
}

SAT_FLATTEN void ToF32Impl(const bf16* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_f32(in[i].bits);
}

SAT_FLATTEN void RoundBf16Impl(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
}

// ---- element-wise layer kernels: branch-free selects, so that the compiler vectorises them.
SAT_FLATTEN void ReluForwardImpl(const bf16* in, bf16* out, uint8_t* pos, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = in[i].bits;
    const bool keep = (b & 0x8000u) == 0 && b != 0;
    out[i].bits = keep ? b : uint16_t{0};
  }
  if (pos) {
    for (int64_t i = 0; i < n; ++i) pos[i] = out[i].bits != 0;
  }
}

SAT_FLATTEN void ReluBackwardImpl(const bf16* g, const uint8_t* pos, bf16* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    out[i].bits = static_cast<uint16_t>(g[i].bits & static_cast<uint16_t>(-static_cast<int>(pos[i] != 0)));
}

// The order in which the four elements of a window compete (first wins ties): (0,0), (0,1),
// (1,0), (1,1), as the general pooling loop visits them.
inline bool Beats(float val, float best) {
  return (val > best) | (std::isnan(val) & !std::isnan(best));
}

// bf16_bits_to_f32 without its branch (subnormals flush to a signed zero), so loops vectorise.
inline float WidenBf16(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  u = (u & 0x7f800000u) == 0 ? (u & 0x80000000u) : u;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

SAT_FLATTEN void MaxPoolForwardImpl(const bf16* in, int64_t planes, int64_t h, int64_t w,
                                    bf16* out, int32_t* argmax) {
  const int64_t oh = h / 2, ow = w / 2;
  // Windows go in batches: the four candidates of each are first gathered into contiguous rows
  // (c[j][i], j in the order a window compares them), so that the compare and select loop runs
  // over whole vectors however short the image rows are.
  constexpr int64_t kBatch = 512;
  alignas(64) float c[4][kBatch];
  alignas(64) float win[kBatch];
  alignas(64) int32_t wini[kBatch];
  uint16_t cb[4][kBatch];
  int32_t first[kBatch];            // each window's top-left element within its plane
  int64_t fill = 0, done = 0;       // windows gathered in this batch, and written before it
  const auto flush = [&] {
    for (int j = 0; j < 4; ++j)
      for (int64_t i = 0; i < fill; ++i) c[j][i] = WidenBf16(cb[j][i]);
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
    for (int64_t i = 0; i < fill; ++i) {
      float best = c[0][i];
      int32_t bi = 0;
      for (int j = 1; j < 4; ++j) {
        const bool b = Beats(c[j][i], best);
        best = b ? c[j][i] : best;
        bi = b ? j : bi;
      }
      win[i] = best;
      wini[i] = bi;
    }
#else
    const hn::ScalableTag<float> df;
    const hn::RebindToSigned<decltype(df)> di;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
    for (int j = 0; j < 4; ++j)   // the last vector's tail compares zeros, never stored
      for (int64_t i = fill; i < (fill + lanes - 1) / lanes * lanes; ++i) c[j][i] = 0.0f;
    for (int64_t i = 0; i < fill; i += lanes) {
      auto best = hn::Load(df, c[0] + i);
      auto bi = hn::Zero(di);
      for (int j = 1; j < 4; ++j) {
        const auto v = hn::Load(df, c[j] + i);
        // Beats(): greater, or a NaN over a number.
        const auto b = hn::Or(hn::Gt(v, best), hn::AndNot(hn::IsNaN(best), hn::IsNaN(v)));
        best = hn::IfThenElse(b, v, best);
        bi = hn::IfThenElse(hn::RebindMask(di, b), hn::Set(di, j), bi);
      }
      hn::Store(best, df, win + i);
      hn::Store(bi, di, wini + i);
    }
#endif
    for (int64_t i = 0; i < fill; ++i) {
      uint32_t u;   // the winner as it widened: exactly a BF16 number, its bits the upper half
      std::memcpy(&u, &win[i], sizeof u);
      out[done + i].bits = static_cast<uint16_t>(u >> 16);
    }
    if (argmax) {
      for (int64_t i = 0; i < fill; ++i)
        argmax[done + i] = first[i] + (wini[i] & 1) + (wini[i] >> 1) * static_cast<int32_t>(w);
    }
    done += fill;
    fill = 0;
  };
  for (int64_t pl = 0; pl < planes; ++pl) {
    const uint16_t* src = &in[pl * h * w].bits;
    for (int64_t oy = 0; oy < oh; ++oy) {
      const uint16_t* r0 = src + 2 * oy * w;
      const uint16_t* r1 = r0 + w;
      for (int64_t ox = 0; ox < ow; ++ox) {
        cb[0][fill] = r0[2 * ox];
        cb[1][fill] = r0[2 * ox + 1];
        cb[2][fill] = r1[2 * ox];
        cb[3][fill] = r1[2 * ox + 1];
        first[fill] = static_cast<int32_t>(2 * oy * w + 2 * ox);
        if (++fill == kBatch) flush();
      }
    }
  }
  flush();
}

SAT_FLATTEN void MaxPoolBackwardImpl(const bf16* __restrict g, const int32_t* __restrict argmax,
                                     int64_t planes, int64_t h, int64_t w, bf16* __restrict out) {
  // The windows do not overlap, so each input is its window's gradient where it won and zero
  // elsewhere: clear the plane, then one store per window.
  const int64_t ohw = (h / 2) * (w / 2);
  for (int64_t pl = 0; pl < planes; ++pl) {
    uint16_t* __restrict dst = &out[pl * h * w].bits;
    const uint16_t* __restrict gp = &g[pl * ohw].bits;
    const int32_t* __restrict am = argmax + pl * ohw;
    std::memset(dst, 0, sizeof(uint16_t) * h * w);
    for (int64_t i = 0; i < ohw; ++i) dst[am[i]] = gp[i];
  }
}

int64_t TargetImpl() { return HWY_TARGET; }

}  // namespace sat::cpu::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sat::cpu::simd {

HWY_EXPORT(SpmmKernelImpl);
HWY_EXPORT(NmSelectLinesImpl);
HWY_EXPORT(SgdRangeImpl);
HWY_EXPORT(ToBf16Impl);
HWY_EXPORT(ToF32Impl);
HWY_EXPORT(RoundBf16Impl);
HWY_EXPORT(TargetImpl);
HWY_EXPORT(ReluForwardImpl);
HWY_EXPORT(ReluBackwardImpl);
HWY_EXPORT(MaxPoolForwardImpl);
HWY_EXPORT(MaxPoolBackwardImpl);

namespace {
void apply_env_once();
}  // namespace

SpmmKernel spmm_kernel() {
  apply_env_once();
  return HWY_DYNAMIC_DISPATCH(SpmmKernelImpl)();
}

void nm_select_lines(const float* w, int64_t cout, int64_t k, int n, int m, bool along_k,
                     bool round, int64_t l0, int64_t l1, float* values, uint8_t* index) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(NmSelectLinesImpl)(w, cout, k, n, m, along_k, round, l0, l1, values, index);
}

void sgd_range(float* w, float* v, const float* g, const uint8_t* mask, int64_t n,
               const SgdHyper& h) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(SgdRangeImpl)(w, v, g, mask, n, h);
}

void to_bf16(const float* in, bf16* out, int64_t n) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(ToBf16Impl)(in, out, n);
}
void to_f32(const bf16* in, float* out, int64_t n) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(ToF32Impl)(in, out, n);
}
void round_bf16_inplace(float* x, int64_t n) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(RoundBf16Impl)(x, n);
}

void relu_forward_bf16(const bf16* in, bf16* out, uint8_t* pos, int64_t n) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(ReluForwardImpl)(in, out, pos, n);
}
void relu_backward_bf16(const bf16* g, const uint8_t* pos, bf16* out, int64_t n) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(ReluBackwardImpl)(g, pos, out, n);
}
void maxpool2x2_forward_bf16(const bf16* in, int64_t planes, int64_t h, int64_t w, bf16* out,
                             int32_t* argmax) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(MaxPoolForwardImpl)(in, planes, h, w, out, argmax);
}
void maxpool2x2_backward_bf16(const bf16* g, const int32_t* argmax, int64_t planes, int64_t h,
                              int64_t w, bf16* out) {
  apply_env_once();
  HWY_DYNAMIC_DISPATCH(MaxPoolBackwardImpl)(g, argmax, planes, h, w, out);
}

namespace {

const char* name_of(int64_t target) {
  if (target == HWY_AVX3 || target == HWY_AVX3_DL) return "avx512";
  if (target == HWY_AVX2) return "avx2";
  return "portable";
}

// The targets of each name this build has (HWY_TARGETS) and this CPU runs.
int64_t runnable(const char* name) {
  int64_t real = 0;
  for (int64_t t : {static_cast<int64_t>(HWY_AVX3_DL), static_cast<int64_t>(HWY_AVX3),
                    static_cast<int64_t>(HWY_AVX2), static_cast<int64_t>(HWY_SCALAR),
                    static_cast<int64_t>(HWY_EMU128)}) {
    if ((HWY_TARGETS & t) && std::strcmp(name_of(t), name) == 0) real |= t;
  }
  return real;
}

const char* current_name() { return name_of(HWY_DYNAMIC_DISPATCH(TargetImpl)()); }

int64_t cpu_targets() {
  // What the CPU itself supports, whatever an earlier force_path restricted.
  static const int64_t targets = [] {
    hwy::SetSupportedTargetsForTest(0);
    return hwy::SupportedTargets();
  }();
  return targets;
}

// SAT_SIMD=avx512|avx2|portable restricts the kernels to one path (to compare paths on one
// machine, or to avoid AVX-512 where it slows the clock); read once, before the first kernel.
void apply_env_once() {
  static const bool applied = [] {
    const char* v = std::getenv("SAT_SIMD");
    if (v == nullptr || *v == '\0') return true;
    if (!force_path(v)) {
      throw Error(std::string("SAT_SIMD=") + v + ": not a SIMD path this CPU and build can run (" +
                  available_paths() + "; or best)");
    }
    return true;
  }();
  (void)applied;
}

}  // namespace

const char* path_name() {
  apply_env_once();
  return current_name();
}

const char* available_paths() {
  static const std::string list = [] {
    std::string s;
    for (const char* p : {"avx512", "avx2", "portable"}) {
      if (runnable(p) & cpu_targets()) s += (s.empty() ? "" : ", ") + std::string(p);
    }
    return s;
  }();
  return list.c_str();
}

bool force_path(const char* name) {
  const int64_t cpu = cpu_targets();
  if (std::strcmp(name, "best") == 0) {
    hwy::SetSupportedTargetsForTest(0);
    return true;
  }
  const int64_t want = runnable(name) & cpu;
  if (want == 0) return false;
  // Keep the baseline target in the set: Highway requires one it can always fall back to.
  hwy::SetSupportedTargetsForTest(want | HWY_STATIC_TARGET);
  return std::strcmp(current_name(), name) == 0;
}

}  // namespace sat::cpu::simd
#endif  // HWY_ONCE
