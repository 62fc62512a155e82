// VEC unit: DRAM -> DRAM vector operations. Element types: activations and their gradients BF16;
// parameters, statistics and parameter gradients FP32; labels and counts int32. Each operation
// follows its CPU reference (host/src/layers/*.cpp, host/src/model.cpp) in formula and accumulation
// order; where the reference keeps an intermediate in FP32 or double, so does this unit (the
// statistics of the normalisations are accumulated in double, as on the CPU: a 64-bit accumulator
// per channel). Fields and flags: docs/isa.md.
#include <cmath>

#include "kernel.hpp"

namespace sat::kernel {

namespace {

constexpr int kRow = arch::kMaxVecRow;

// Positive as the CPU's ReLU decides it on BF16 bits: sign clear and not zero (a NaN with a clear
// sign passes).
inline bool positive_bits(uint16_t b) { return (b & 0x8000u) == 0 && b != 0; }

// ---- Element-wise ------------------------------------------------------------------------------

bool v_fill(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_FILL;
  const bool fp32 = in.flag(0);
  const uint64_t count = in[f::count];
  DdrOut y = region(cx, in, f::y, count * (fp32 ? 2 : 1));
  if (y == nullptr) return false;
  const float value = field_f32(in, f::value);
  const uint16_t hb = f32_to_bf16_bits(value);
  DdrWriter<1> out(y, count * (fp32 ? 2 : 1));
FILL:
  for (uint64_t i = 0; i < count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    if (fp32) {
      put_f32(out, value);
    } else {
      out.put(hb);
    }
  }
  return true;
}

bool v_convert(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_CONVERT;
  const uint64_t count = in[f::count];
  DdrIn x = region(cx, in, f::x, 2 * count);
  if (x == nullptr) return false;
  DdrOut y = region(cx, in, f::y, count);
  if (y == nullptr) return false;
  DdrReader<1> xs(x, 2 * count);
  DdrWriter<1> ys(y, count);
CONVERT:
  for (uint64_t i = 0; i < count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    put_bf16(ys, next_f32(xs));
  }
  return true;
}

bool v_add(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_ADD;
  const bool af = in.flag(0), bf = in.flag(1), yf = in.flag(2);
  const uint64_t count = in[f::count];
  DdrIn a = region(cx, in, f::a, count * (af ? 2 : 1));
  if (a == nullptr) return false;
  DdrIn b = region(cx, in, f::b, count * (bf ? 2 : 1));
  if (b == nullptr) return false;
  DdrOut y = region(cx, in, f::y, count * (yf ? 2 : 1));
  if (y == nullptr) return false;
  DdrReader<1> as(a, count * (af ? 2 : 1));
  DdrReader<2> bs(b, count * (bf ? 2 : 1));
  DdrWriter<1> ys(y, count * (yf ? 2 : 1));
ADD:
  for (uint64_t i = 0; i < count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    const float av = af ? next_f32(as) : next_bf16(as);
    const float s = av + (bf ? next_f32(bs) : next_bf16(bs));
    if (yf) {
      put_f32(ys, s);
    } else {
      put_bf16(ys, s);
    }
  }
  return true;
}

bool v_bcast_add(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_BCAST_ADD;
  const uint64_t rows = in[f::rows], cols = in[f::cols];
  DdrIn x = region(cx, in, f::x, rows * cols);
  if (x == nullptr) return false;
  DdrIn p = region(cx, in, f::p, 2 * cols);
  if (p == nullptr) return false;
  DdrOut y = region(cx, in, f::y, rows * cols);
  if (y == nullptr) return false;
  DdrReader<1> xs(x, rows * cols);
  DdrWriter<1> ys(y, rows * cols);
BCAST_ROWS:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    DdrReader<2> ps(p, 2 * cols);   // the row vector again for every row: cols is not bounded on chip
BCAST_COLS:
    for (uint64_t c = 0; c < cols; ++c) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
      const float xv = next_bf16(xs);
      put_bf16(ys, xv + next_f32(ps));
    }
  }
  return true;
}

// y[c] (+)= sum over r of x[r][c], FP32, rows in order (the CPU's bias gradient: grad[c] += g[r][c]).
bool v_colsum(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_COLSUM;
  const bool add = in.flag(0);
  const uint64_t rows = in[f::rows], cols = in[f::cols];
  DdrIn x = region(cx, in, f::x, rows * cols);
  if (x == nullptr) return false;
  DdrOut y = region(cx, in, f::y, 2 * cols);
  if (y == nullptr) return false;
  static float acc[kRow];
COLSUM_CHUNKS:
  for (uint64_t c0 = 0; c0 < cols; c0 += kRow) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1
    const uint64_t nc = cols - c0 < static_cast<uint64_t>(kRow) ? cols - c0 : kRow;
    for (uint64_t c = 0; c < nc; ++c) acc[c] = add ? ld_f32(y, c0 + c) : 0.0f;
COLSUM_ROWS:
    for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
      DdrReader<1> xr(x + r * cols + c0, nc);
COLSUM_COLS:
      for (uint64_t c = 0; c < nc; ++c) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
        acc[c] += next_bf16(xr);
      }
    }
    for (uint64_t c = 0; c < nc; ++c) st_f32(y, c0 + c, acc[c]);
  }
  return true;
}

// The operands of an element-wise activation, BF16 `count` values each: x -> y (V_RELU, V_GELU:
// fields x, y, count) or, backward, x and dy -> dx (V_RELU_BWD, V_GELU_BWD: x, dy, dx, count).
constexpr bool act_layouts_match() {
  namespace r = isa::f_V_RELU;
  namespace g = isa::f_V_GELU;
  namespace rb = isa::f_V_RELU_BWD;
  namespace gb = isa::f_V_GELU_BWD;
  return int{r::x} == int{g::x} && int{r::y} == int{g::y} && int{r::count} == int{g::count} &&
         int{rb::x} == int{gb::x} && int{rb::dy} == int{gb::dy} && int{rb::dx} == int{gb::dx} &&
         int{rb::count} == int{gb::count};
}
static_assert(act_layouts_match(), "V_RELU / V_GELU (or their backward) field layouts differ");

struct ActArgs {
  uint64_t count;
  DdrIn x;
  DdrOut y;
};
inline bool act_args(Ctx& cx, const Insn& in, ActArgs& a) {
  namespace f = isa::f_V_RELU;
  a.count = in[f::count];
  a.x = region(cx, in, f::x, a.count);
  if (a.x == nullptr) return false;
  a.y = region(cx, in, f::y, a.count);
  return a.y != nullptr;
}

struct ActBwdArgs {
  uint64_t count;
  DdrIn x;
  DdrIn dy;
  DdrOut dx;
};
inline bool act_bwd_args(Ctx& cx, const Insn& in, ActBwdArgs& a) {
  namespace f = isa::f_V_RELU_BWD;
  a.count = in[f::count];
  a.x = region(cx, in, f::x, a.count);
  if (a.x == nullptr) return false;
  a.dy = region(cx, in, f::dy, a.count);
  if (a.dy == nullptr) return false;
  a.dx = region(cx, in, f::dx, a.count);
  return a.dx != nullptr;
}

bool v_relu(Ctx& cx, const Insn& in) {
  ActArgs a;
  if (!act_args(cx, in, a)) return false;
  DdrReader<1> xs(a.x, a.count);
  DdrWriter<1> ys(a.y, a.count);
RELU:
  for (uint64_t i = 0; i < a.count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    const uint16_t b = xs.next();
    ys.put(positive_bits(b) ? b : uint16_t{0});
  }
  return true;
}

bool v_relu_bwd(Ctx& cx, const Insn& in) {
  ActBwdArgs a;
  if (!act_bwd_args(cx, in, a)) return false;
  DdrReader<1> xs(a.x, a.count);
  DdrReader<2> dys(a.dy, a.count);
  DdrWriter<1> dxs(a.dx, a.count);
RELU_BWD:
  for (uint64_t i = 0; i < a.count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    const bool pass = positive_bits(xs.next());
    const uint16_t d = dys.next();   // taken either way: the walk stays in step
    dxs.put(pass ? d : uint16_t{0});
  }
  return true;
}

// GELU in PyTorch's erf form or its tanh approximation, in double as the CPU layer (gelu.cpp).
constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kCubic = 0.044715;

inline double gelu_value(double x, bool tanh_form) {
  if (tanh_form) return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x)));
  return 0.5 * x * (1.0 + std::erf(x / kSqrt2));
}
inline double gelu_derivative(double x, bool tanh_form) {
  if (tanh_form) {
    const double t = std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x));
    const double du = kSqrt2OverPi * (1.0 + 3.0 * kCubic * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
  }
  return 0.5 * (1.0 + std::erf(x / kSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
}

bool v_gelu(Ctx& cx, const Insn& in) {
  const bool tanh_form = in.flag(0);
  ActArgs a;
  if (!act_args(cx, in, a)) return false;
  DdrReader<1> xs(a.x, a.count);
  DdrWriter<1> ys(a.y, a.count);
GELU:
  for (uint64_t i = 0; i < a.count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    put_bf16(ys, static_cast<float>(gelu_value(next_bf16(xs), tanh_form)));
  }
  return true;
}

bool v_gelu_bwd(Ctx& cx, const Insn& in) {
  const bool tanh_form = in.flag(0);
  ActBwdArgs a;
  if (!act_bwd_args(cx, in, a)) return false;
  DdrReader<1> xs(a.x, a.count);
  DdrReader<2> dys(a.dy, a.count);
  DdrWriter<1> dxs(a.dx, a.count);
GELU_BWD:
  for (uint64_t i = 0; i < a.count; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    const float dy = next_bf16(dys);
    put_bf16(dxs, static_cast<float>(dy * gelu_derivative(next_bf16(xs), tanh_form)));
  }
  return true;
}

// ---- Pooling (NHWC BF16) ------------------------------------------------------------------------

// Strictly greater keeps the first maximum on ties; a NaN wins (pool.cpp's rule).
inline bool beats(float val, float best) { return (val > best) || (std::isnan(val) && !std::isnan(best)); }

struct PoolArgs {
  ConvGeom g;
  uint64_t batch;
  bool avg;
};

// Decodes and checks the pooling geometry: every window must hold at least one real element
// (oh <= (h + 2*pad - kh) / stride + 1, likewise ow).
bool pool_geom(Ctx& cx, const Insn& in, int b_field, PoolArgs& a) {
  a.batch = in[b_field];
  a.avg = in.flag(0);
  if (a.batch == 0) return cx.bad_field(in, b_field);
  if (!decode_geom(cx, in, b_field + 1, a.g)) return false;
  const ConvGeom& g = a.g;
  if (g.h + 2 * g.pad < g.kh || g.oh > (g.h + 2 * g.pad - g.kh) / g.stride + 1)
    return cx.bad_field(in, b_field + 6, (g.h + 2 * g.pad >= g.kh) ? (g.h + 2 * g.pad - g.kh) / g.stride + 1 : 0);
  if (g.w + 2 * g.pad < g.kw || g.ow > (g.w + 2 * g.pad - g.kw) / g.stride + 1)
    return cx.bad_field(in, b_field + 7, (g.w + 2 * g.pad >= g.kw) ? (g.w + 2 * g.pad - g.kw) / g.stride + 1 : 0);
  return true;
}

// The rows [lo, hi) of the input that window o covers along an axis of n, padding clipped off.
inline void span(uint32_t o, uint32_t stride, uint32_t pad, uint32_t k, uint32_t n, int64_t& lo, int64_t& hi) {
  const int64_t start = static_cast<int64_t>(o) * stride - pad;
  lo = start < 0 ? 0 : start;
  hi = start + k < n ? start + k : n;
}

bool v_pool(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_POOL;
  PoolArgs a;
  if (!pool_geom(cx, in, f::b, a)) return false;
  const ConvGeom& g = a.g;
  DdrIn x = region(cx, in, f::x, a.batch * g.h * g.w * g.c);
  if (x == nullptr) return false;
  DdrOut y = region(cx, in, f::y, a.batch * g.oh * g.ow * g.c);
  if (y == nullptr) return false;
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);   // padding counts in the divisor
POOL_B:
  for (uint64_t b = 0; b < a.batch; ++b) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
    for (uint32_t oy = 0; oy < g.oh; ++oy) {
      int64_t y0, y1;
      span(oy, g.stride, g.pad, g.kh, g.h, y0, y1);
      for (uint32_t ox = 0; ox < g.ow; ++ox) {
        int64_t x0, x1;
        span(ox, g.stride, g.pad, g.kw, g.w, x0, x1);
        DdrOut out = y + ((b * g.oh + oy) * g.ow + ox) * g.c;
POOL_C:
        for (uint32_t c = 0; c < g.c; ++c) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
          float best = ld_bf16(x, ((b * g.h + y0) * g.w + x0) * g.c + c);
          float sum = 0.0f;
          for (int64_t iy = y0; iy < y1; ++iy) {
            for (int64_t ix = x0; ix < x1; ++ix) {
#pragma HLS PIPELINE II = 1
              const float v = ld_bf16(x, ((b * g.h + iy) * g.w + ix) * g.c + c);
              sum += v;
              if (beats(v, best)) best = v;
            }
          }
          st_bf16(out, c, a.avg ? sum * scale : best);
        }
      }
    }
  }
  return true;
}

// Backward as a gather, so that overlapping windows accumulate in FP32 without a DRAM scratch: each
// input element sums, over the windows covering it in (oy, ox) order, dy (max: where it is the
// window's first maximum) or dy * 1/(kh*kw) (average). Same order and bits as pool.cpp's scatter.
bool v_pool_bwd(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_POOL_BWD;
  PoolArgs a;
  if (!pool_geom(cx, in, f::b, a)) return false;
  const ConvGeom& g = a.g;
  DdrIn x = region(cx, in, f::x, a.batch * g.h * g.w * g.c);
  if (x == nullptr) return false;
  DdrIn dy = region(cx, in, f::dy, a.batch * g.oh * g.ow * g.c);
  if (dy == nullptr) return false;
  DdrOut dx = region(cx, in, f::dx, a.batch * g.h * g.w * g.c);
  if (dx == nullptr) return false;
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  const int64_t s = g.stride, p = g.pad;
POOLB_B:
  for (uint64_t b = 0; b < a.batch; ++b) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
    for (int64_t iy = 0; iy < g.h; ++iy) {
      // Windows covering row iy: oy*s - p <= iy < oy*s - p + kh.
      int64_t oy0 = iy + p - g.kh + 1;
      oy0 = oy0 <= 0 ? 0 : (oy0 + s - 1) / s;
      int64_t oy1 = (iy + p) / s;
      if (oy1 >= g.oh) oy1 = g.oh - 1;
      for (int64_t ix = 0; ix < g.w; ++ix) {
        int64_t ox0 = ix + p - g.kw + 1;
        ox0 = ox0 <= 0 ? 0 : (ox0 + s - 1) / s;
        int64_t ox1 = (ix + p) / s;
        if (ox1 >= g.ow) ox1 = g.ow - 1;
        const uint64_t at = ((b * g.h + iy) * g.w + ix) * g.c;
POOLB_C:
        for (uint32_t c = 0; c < g.c; ++c) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
          float acc = 0.0f;
          for (int64_t oy = oy0; oy <= oy1; ++oy) {
            for (int64_t ox = ox0; ox <= ox1; ++ox) {
              const float d = ld_bf16(dy, ((b * g.oh + oy) * g.ow + ox) * g.c + c);
              if (a.avg) {
                acc += d * scale;
                continue;
              }
              int64_t y0, y1, x0, x1;
              span(static_cast<uint32_t>(oy), g.stride, g.pad, g.kh, g.h, y0, y1);
              span(static_cast<uint32_t>(ox), g.stride, g.pad, g.kw, g.w, x0, x1);
              int64_t by = y0, bx = x0;
              float best = ld_bf16(x, ((b * g.h + y0) * g.w + x0) * g.c + c);
              for (int64_t wy = y0; wy < y1; ++wy) {
                for (int64_t wx = x0; wx < x1; ++wx) {
#pragma HLS PIPELINE II = 1
                  const float v = ld_bf16(x, ((b * g.h + wy) * g.w + wx) * g.c + c);
                  if (beats(v, best)) {
                    best = v;
                    by = wy;
                    bx = wx;
                  }
                }
              }
              if (by == iy && bx == ix) acc += d;
            }
          }
          st_bf16(dx, at + c, acc);
        }
      }
    }
  }
  return true;
}

// ---- Normalisation --------------------------------------------------------------------------------

bool check_width(Ctx& cx, const Insn& in, int field) {
  if (in[field] == 0 || in[field] > static_cast<uint32_t>(kRow)) return cx.bad_field(in, field, kRow);
  return true;
}

// Batch norm and layer norm over x [rows][width] (width: channels, features) share their operands:
// V_BN and V_LN begin with the same fields, V_BN_BWD and V_LN_BWD have one layout (`c` is `d`).
constexpr bool norm_layouts_match() {
  namespace bn = isa::f_V_BN;
  namespace ln = isa::f_V_LN;
  namespace bnb = isa::f_V_BN_BWD;
  namespace lnb = isa::f_V_LN_BWD;
  return int{bn::x} == int{ln::x} && int{bn::y} == int{ln::y} && int{bn::gamma} == int{ln::gamma} &&
         int{bn::beta} == int{ln::beta} && int{bnb::x} == int{lnb::x} &&
         int{bnb::dy} == int{lnb::dy} && int{bnb::dx} == int{lnb::dx} &&
         int{bnb::gamma} == int{lnb::gamma} && int{bnb::dgamma} == int{lnb::dgamma} &&
         int{bnb::dbeta} == int{lnb::dbeta} && int{bnb::mean} == int{lnb::mean} &&
         int{bnb::rstd} == int{lnb::rstd};
}
static_assert(norm_layouts_match(), "V_BN / V_LN (or their backward) field layouts differ");

// FF: x, y [rows][width] BF16; gamma, beta [width] FP32.
struct NormArgs {
  DdrIn x;
  DdrOut y;
  DdrIn gamma;
  DdrIn beta;
};
inline bool norm_args(Ctx& cx, const Insn& in, uint64_t rows, uint32_t width, NormArgs& a) {
  namespace f = isa::f_V_BN;
  a.x = region(cx, in, f::x, rows * width);
  if (a.x == nullptr) return false;
  a.y = region(cx, in, f::y, rows * width);
  if (a.y == nullptr) return false;
  a.gamma = region(cx, in, f::gamma, 2ull * width);
  if (a.gamma == nullptr) return false;
  a.beta = region(cx, in, f::beta, 2ull * width);
  return a.beta != nullptr;
}

// BP: x, dy, dx [rows][width] BF16; gamma, dgamma, dbeta [width] FP32; the saved mean and rstd,
// `stats` FP32 values each (per channel for batch norm, per row for layer norm).
struct NormBwdArgs {
  DdrIn x;
  DdrIn dy;
  DdrOut dx;
  DdrIn gamma;
  DdrOut dgamma;
  DdrOut dbeta;
  DdrIn mean;
  DdrIn rstd;
};
inline bool norm_bwd_args(Ctx& cx, const Insn& in, uint64_t rows, uint32_t width, uint64_t stats,
                          NormBwdArgs& a) {
  namespace f = isa::f_V_BN_BWD;
  a.x = region(cx, in, f::x, rows * width);
  if (a.x == nullptr) return false;
  a.dy = region(cx, in, f::dy, rows * width);
  if (a.dy == nullptr) return false;
  a.dx = region(cx, in, f::dx, rows * width);
  if (a.dx == nullptr) return false;
  a.gamma = region(cx, in, f::gamma, 2ull * width);
  if (a.gamma == nullptr) return false;
  a.dgamma = region(cx, in, f::dgamma, 2ull * width);
  if (a.dgamma == nullptr) return false;
  a.dbeta = region(cx, in, f::dbeta, 2ull * width);
  if (a.dbeta == nullptr) return false;
  a.mean = region(cx, in, f::mean, 2 * stats);
  if (a.mean == nullptr) return false;
  a.rstd = region(cx, in, f::rstd, 2 * stats);
  return a.rstd != nullptr;
}

// BatchNorm over x [rows][c] (NHWC: rows = batch * height * width). Training (b0): batch
// statistics (biased variance) normalise, running statistics move by `momentum` towards the batch
// mean and unbiased variance, mean and rstd are saved; otherwise the running statistics normalise.
// The vector unit's scratch (arch::kVecScratchElems BF16, URAM in hardware): BatchNorm keeps x (and
// in BP dy) there during its first pass and reads it back in the later ones instead of DRAM.
uint16_t g_vec_scratch[arch::kVecScratchElems > 0 ? arch::kVecScratchElems : 1];

bool v_bn(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_BN;
  const bool training = in.flag(0), relu = in.flag(1);
  if (in.flags() & ~3u) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], in.w[0] & 0xfc000000u);
  const uint64_t rows = in[f::rows];
  const uint32_t c = in[f::c];
  if (!check_width(cx, in, f::c)) return false;
  if (rows == 0 || (training && rows < 2)) return cx.bad_field(in, f::rows, 2);
  NormArgs a;
  if (!norm_args(cx, in, rows, c, a)) return false;
  DdrOut rmean = region(cx, in, f::run_mean, 2ull * c);
  if (rmean == nullptr) return false;
  DdrOut rvar = region(cx, in, f::run_var, 2ull * c);
  if (rvar == nullptr) return false;
  DdrOut smean = nullptr;
  DdrOut srstd = nullptr;
  if (training) {
    smean = region(cx, in, f::mean, 2ull * c);
    if (smean == nullptr) return false;
    srstd = region(cx, in, f::rstd, 2ull * c);
    if (srstd == nullptr) return false;
  }
  const double eps = field_f32(in, f::eps), momentum = field_f32(in, f::momentum);
  static double mean[kRow], acc[kRow];
  // The first pass keeps x in the scratch when it fits; the later passes read it from there.
  uint16_t* const sx = g_vec_scratch;
  const bool cached = training && rows * c <= static_cast<uint64_t>(arch::kVecScratchElems);
  auto xv = [&](uint64_t i) -> float {
    return bf16_bits_to_f32(cached ? sx[i] : static_cast<uint16_t>(a.x[i]));
  };
  if (training) {
    for (uint32_t ch = 0; ch < c; ++ch) acc[ch] = 0;
BN_SUM:
    for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = 65536
      for (uint32_t ch = 0; ch < c; ++ch) {
        const uint16_t b = a.x[r * c + ch];
        if (cached) sx[r * c + ch] = b;
        acc[ch] += bf16_bits_to_f32(b);
      }
    }
    for (uint32_t ch = 0; ch < c; ++ch) {
      mean[ch] = acc[ch] / static_cast<double>(rows);
      acc[ch] = 0;
    }
BN_SQ:
    for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = 65536
      for (uint32_t ch = 0; ch < c; ++ch) {
        const double d = xv(r * c + ch) - mean[ch];
        acc[ch] += d * d;
      }
    }
    for (uint32_t ch = 0; ch < c; ++ch) {
      const double var = acc[ch] / static_cast<double>(rows);
      const double unbiased = acc[ch] / static_cast<double>(rows - 1);
      st_f32(rmean, ch, static_cast<float>((1 - momentum) * ld_f32(rmean, ch) + momentum * mean[ch]));
      st_f32(rvar, ch, static_cast<float>((1 - momentum) * ld_f32(rvar, ch) + momentum * unbiased));
      acc[ch] = 1.0 / std::sqrt(var + eps);   // acc becomes invstd
      st_f32(smean, ch, static_cast<float>(mean[ch]));
      st_f32(srstd, ch, static_cast<float>(acc[ch]));
    }
  } else {
    for (uint32_t ch = 0; ch < c; ++ch) {
      mean[ch] = ld_f32(rmean, ch);
      acc[ch] = 1.0 / std::sqrt(static_cast<double>(ld_f32(rvar, ch)) + eps);
    }
  }
  DdrOut mask = nullptr;
  uint16_t mbits = 0;
  if (relu) {
    mask = region(cx, in, f::mask, (rows * c + 15) / 16);
    if (mask == nullptr) return false;
  }
BN_APPLY:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
    for (uint32_t ch = 0; ch < c; ++ch) {
#pragma HLS PIPELINE II = 1
      const double nrm = (xv(r * c + ch) - mean[ch]) * acc[ch];
      const uint16_t yb =
          f32_to_bf16_bits(static_cast<float>(static_cast<double>(ld_f32(a.gamma, ch)) * nrm + ld_f32(a.beta, ch)));
      const bool keep = !relu || positive_bits(yb);   // b1: V_RELU's rule, fused
      a.y[r * c + ch] = keep ? yb : uint16_t{0};
      if (relu) {   // its bit mask, 16 elements a halfword, for V_BN_BWD b0
        const uint64_t i = r * c + ch;
        mbits = static_cast<uint16_t>(mbits | (keep ? 1u : 0u) << (i & 15));
        if ((i & 15) == 15 || i + 1 == rows * c) {
          mask[i >> 4] = mbits;
          mbits = 0;
        }
      }
    }
  }
  return true;
}

// Element i of x (channel ch) normalised with the saved statistics, rounded to FP32 as the CPU
// layer keeps it.
inline float bn_xhat(const NormBwdArgs& a, float x, uint32_t ch) {
  return static_cast<float>((static_cast<double>(x) - ld_f32(a.mean, ch)) * static_cast<double>(ld_f32(a.rstd, ch)));
}

// BatchNorm backward with the batch statistics (mean, rstd as V_BN saved them):
//   dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)); dgamma = sum(dy * xhat) and
//   dbeta = sum(dy) are written (not accumulated).
bool v_bn_bwd(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_BN_BWD;
  const uint64_t rows = in[f::rows];
  const uint32_t c = in[f::c];
  if (!check_width(cx, in, f::c)) return false;
  if (rows == 0) return cx.bad_field(in, f::rows, 1);
  NormBwdArgs a;
  if (!norm_bwd_args(cx, in, rows, c, c, a)) return false;
  if (in.flags() & ~1u) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], in.w[0] & 0xfe000000u);
  // b0: the ReLU fused into V_BN; dy passes where its bit mask is set (V_RELU_BWD's rule).
  const bool masked = in.flag(0);
  DdrIn mask = nullptr;
  if (masked) {
    mask = region(cx, in, f::mask, (rows * c + 15) / 16);
    if (mask == nullptr) return false;
  }
  auto dyb = [&](uint64_t i) -> uint16_t {
    return !masked || ((static_cast<uint16_t>(mask[i >> 4]) >> (i & 15)) & 1u) ? static_cast<uint16_t>(a.dy[i])
                                                                                 : uint16_t{0};
  };
  static double sum_g[kRow], sum_gx[kRow];
  // The first pass keeps x and dy in the scratch when both fit; the second reads them from there.
  const uint64_t n = rows * c;
  uint16_t* const sx = g_vec_scratch;
  uint16_t* const sdy = g_vec_scratch + n;
  const bool cached = 2 * n <= static_cast<uint64_t>(arch::kVecScratchElems);
  for (uint32_t ch = 0; ch < c; ++ch) sum_g[ch] = sum_gx[ch] = 0;
BNB_SUM:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
    for (uint32_t ch = 0; ch < c; ++ch) {
      const uint16_t gb = dyb(r * c + ch), xb = a.x[r * c + ch];
      if (cached) {
        sdy[r * c + ch] = gb;
        sx[r * c + ch] = xb;
      }
      const float g = bf16_bits_to_f32(gb);
      const float xh = bn_xhat(a, bf16_bits_to_f32(xb), ch);
      sum_g[ch] += g;
      sum_gx[ch] += static_cast<double>(g) * xh;
    }
  }
  const double count = static_cast<double>(rows);
  for (uint32_t ch = 0; ch < c; ++ch) {
    st_f32(a.dgamma, ch, static_cast<float>(sum_gx[ch]));
    st_f32(a.dbeta, ch, static_cast<float>(sum_g[ch]));
  }
BNB_APPLY:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
    for (uint32_t ch = 0; ch < c; ++ch) {
#pragma HLS PIPELINE II = 1
      const double scale = static_cast<double>(ld_f32(a.gamma, ch)) * ld_f32(a.rstd, ch);
      const uint64_t i = r * c + ch;
      const float g = bf16_bits_to_f32(cached ? sdy[i] : dyb(i));
      const float xh = bn_xhat(a, bf16_bits_to_f32(cached ? sx[i] : static_cast<uint16_t>(a.x[i])), ch);
      st_bf16(a.dx, r * c + ch,
              static_cast<float>(scale * (g - sum_g[ch] / count - xh * (sum_gx[ch] / count))));
    }
  }
  return true;
}

// LayerNorm over the last dimension of x [rows][d]: saves per-row mean and rstd (FP32).
bool v_ln(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_LN;
  const uint64_t rows = in[f::rows];
  const uint32_t d = in[f::d];
  if (!check_width(cx, in, f::d)) return false;
  NormArgs a;
  if (!norm_args(cx, in, rows, d, a)) return false;
  DdrOut smean = region(cx, in, f::mean, 2 * rows);
  if (smean == nullptr) return false;
  DdrOut srstd = region(cx, in, f::rstd, 2 * rows);
  if (srstd == nullptr) return false;
  const double eps = field_f32(in, f::eps);
  static float row[kRow];
LN_ROWS:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    double sum = 0;
    for (uint32_t i = 0; i < d; ++i) {
      row[i] = ld_bf16(a.x, r * d + i);
      sum += row[i];
    }
    const double mean = sum / static_cast<double>(d);
    double sq = 0;
    for (uint32_t i = 0; i < d; ++i) sq += (row[i] - mean) * (row[i] - mean);
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(d) + eps);
    st_f32(smean, r, static_cast<float>(mean));
    st_f32(srstd, r, static_cast<float>(rs));
    for (uint32_t i = 0; i < d; ++i) {
#pragma HLS PIPELINE II = 1
      const float h = static_cast<float>((row[i] - mean) * rs);
      st_bf16(a.y, r * d + i, ld_f32(a.gamma, i) * h + ld_f32(a.beta, i));
    }
  }
  return true;
}

// LayerNorm backward: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma; dgamma and
// dbeta (sums over rows, double) are written, not accumulated.
bool v_ln_bwd(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_LN_BWD;
  const uint64_t rows = in[f::rows];
  const uint32_t d = in[f::d];
  if (!check_width(cx, in, f::d)) return false;
  NormBwdArgs a;
  if (!norm_bwd_args(cx, in, rows, d, rows, a)) return false;
  static double dg[kRow], db[kRow];
  static float h[kRow];
  for (uint32_t i = 0; i < d; ++i) dg[i] = db[i] = 0;
LNB_ROWS:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    const double mu = ld_f32(a.mean, r), rs = ld_f32(a.rstd, r);
    double sum_g = 0, sum_gh = 0;
    for (uint32_t i = 0; i < d; ++i) {
      h[i] = static_cast<float>((ld_bf16(a.x, r * d + i) - mu) * rs);
      const float g = ld_bf16(a.dy, r * d + i);
      dg[i] += static_cast<double>(g) * h[i];
      db[i] += g;
      const double gi = static_cast<double>(g) * ld_f32(a.gamma, i);
      sum_g += gi;
      sum_gh += gi * h[i];
    }
    const double mean_g = sum_g / static_cast<double>(d), mean_gh = sum_gh / static_cast<double>(d);
    for (uint32_t i = 0; i < d; ++i) {
#pragma HLS PIPELINE II = 1
      const double gi = static_cast<double>(ld_bf16(a.dy, r * d + i)) * ld_f32(a.gamma, i);
      st_bf16(a.dx, r * d + i, static_cast<float>(rs * (gi - mean_g - h[i] * mean_gh)));
    }
  }
  for (uint32_t i = 0; i < d; ++i) {
    st_f32(a.dgamma, i, static_cast<float>(dg[i]));
    st_f32(a.dbeta, i, static_cast<float>(db[i]));
  }
  return true;
}

// ---- Softmax and loss -------------------------------------------------------------------------------

// y = softmax(scale * x) per row (attention.cpp's softmax_rows on the scaled scores).
bool v_softmax(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_SOFTMAX;
  const uint64_t rows = in[f::rows];
  const uint32_t cols = in[f::cols];
  if (!check_width(cx, in, f::cols)) return false;
  DdrIn x = region(cx, in, f::x, rows * cols);
  if (x == nullptr) return false;
  DdrOut y = region(cx, in, f::y, rows * cols);
  if (y == nullptr) return false;
  const float scale = field_f32(in, f::scale);
  static float row[kRow];
SOFTMAX_ROWS:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    float mx = 0;
    for (uint32_t s = 0; s < cols; ++s) {
      row[s] = scale * ld_bf16(x, r * cols + s);
      mx = s == 0 ? row[s] : (row[s] > mx ? row[s] : mx);
    }
    double sum = 0;
    for (uint32_t s = 0; s < cols; ++s) {
      row[s] = std::exp(row[s] - mx);
      sum += row[s];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (uint32_t s = 0; s < cols; ++s) {
#pragma HLS PIPELINE II = 1
      st_bf16(y, r * cols + s, row[s] * inv);
    }
  }
  return true;
}

// dx = scale * y * (dy - sum(y * dy)) per row.
bool v_softmax_bwd(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_SOFTMAX_BWD;
  const uint64_t rows = in[f::rows];
  const uint32_t cols = in[f::cols];
  if (!check_width(cx, in, f::cols)) return false;
  DdrIn y = region(cx, in, f::y, rows * cols);
  if (y == nullptr) return false;
  DdrIn dy = region(cx, in, f::dy, rows * cols);
  if (dy == nullptr) return false;
  DdrOut dx = region(cx, in, f::dx, rows * cols);
  if (dx == nullptr) return false;
  const float scale = field_f32(in, f::scale);
SOFTMAXB_ROWS:
  for (uint64_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    double dot = 0;
    for (uint32_t s = 0; s < cols; ++s) dot += static_cast<double>(ld_bf16(y, r * cols + s)) * ld_bf16(dy, r * cols + s);
    const float fdot = static_cast<float>(dot);
    for (uint32_t s = 0; s < cols; ++s) {
#pragma HLS PIPELINE II = 1
      st_bf16(dx, r * cols + s, scale * ld_bf16(y, r * cols + s) * (ld_bf16(dy, r * cols + s) - fdot));
    }
  }
  return true;
}

// Softmax cross-entropy over logits [rows][classes] (BF16) and int32 labels: out[0] = mean loss
// (FP32), out[1] = correct count (int32, first maximum as the prediction); with b0,
// dlogits = (softmax - onehot) / rows (BF16). model.cpp's softmax_cross_entropy.
bool v_xent(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_XENT;
  const bool grad = in.flag(0);
  const uint64_t rows = in[f::rows], classes = in[f::classes];
  if (rows == 0) return cx.bad_field(in, f::rows, 1);
  if (classes == 0) return cx.bad_field(in, f::classes, 1);
  DdrIn z = region(cx, in, f::logits, rows * classes);
  if (z == nullptr) return false;
  DdrIn labels = region(cx, in, f::labels, 2 * rows);
  if (labels == nullptr) return false;
  DdrOut out = region(cx, in, f::out, 4);
  if (out == nullptr) return false;
  DdrOut dz = nullptr;
  if (grad) {
    dz = region(cx, in, f::dlogits, rows * classes);
    if (dz == nullptr) return false;
  }
  double loss = 0;
  uint32_t right = 0;
XENT_ROWS:
  for (uint64_t i = 0; i < rows; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
    DdrIn row = z + i * classes;
    const int32_t yl = static_cast<int32_t>(ld_u32(labels, i));
    if (yl < 0 || static_cast<uint64_t>(yl) >= classes)
      return cx.fail(isa::STATUS_BAD_FIELD, f::labels, in[f::labels], static_cast<uint32_t>(i));
    uint64_t best = 0;
    for (uint64_t j = 1; j < classes; ++j)
      if (ld_bf16(row, best) < ld_bf16(row, j)) best = j;
    const float mx = ld_bf16(row, best);
    double sum = 0;
    for (uint64_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(ld_bf16(row, j) - mx));
    loss += std::log(sum) - (ld_bf16(row, static_cast<uint64_t>(yl)) - mx);
    right += best == static_cast<uint64_t>(yl) ? 1u : 0u;
    if (grad) {
      for (uint64_t j = 0; j < classes; ++j) {
#pragma HLS PIPELINE II = 1
        const double p = std::exp(static_cast<double>(ld_bf16(row, j) - mx)) / sum;
        st_bf16(dz, i * classes + j,
                static_cast<float>((p - (j == static_cast<uint64_t>(yl) ? 1.0 : 0.0)) / static_cast<double>(rows)));
      }
    }
  }
  st_f32(out, 0, static_cast<float>(loss / static_cast<double>(rows)));
  st_u32(out, 1, right);
  return true;
}

// y[o][c][r] = x[o][r][c], BF16 (x and y must not overlap).
bool v_permute(Ctx& cx, const Insn& in) {
  namespace f = isa::f_V_PERMUTE;
  const uint64_t outer = in[f::outer], rows = in[f::rows], cols = in[f::cols];
  DdrIn x = region(cx, in, f::x, outer * rows * cols);
  if (x == nullptr) return false;
  DdrOut y = region(cx, in, f::y, outer * rows * cols);
  if (y == nullptr) return false;
PERMUTE:
  for (uint64_t o = 0; o < outer; ++o) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
    for (uint64_t r = 0; r < rows; ++r) {
      for (uint64_t c = 0; c < cols; ++c) {
#pragma HLS PIPELINE II = 1
        y[(o * cols + c) * rows + r] = x[(o * rows + r) * cols + c];
      }
    }
  }
  return true;
}

}  // namespace

bool exec_vec(Ctx& cx, const Insn& in) {
  switch (in.opcode()) {
    case isa::OP_V_FILL: return v_fill(cx, in);
    case isa::OP_V_CONVERT: return v_convert(cx, in);
    case isa::OP_V_ADD: return v_add(cx, in);
    case isa::OP_V_BCAST_ADD: return v_bcast_add(cx, in);
    case isa::OP_V_COLSUM: return v_colsum(cx, in);
    case isa::OP_V_RELU: return v_relu(cx, in);
    case isa::OP_V_RELU_BWD: return v_relu_bwd(cx, in);
    case isa::OP_V_GELU: return v_gelu(cx, in);
    case isa::OP_V_GELU_BWD: return v_gelu_bwd(cx, in);
    case isa::OP_V_POOL: return v_pool(cx, in);
    case isa::OP_V_POOL_BWD: return v_pool_bwd(cx, in);
    case isa::OP_V_BN: return v_bn(cx, in);
    case isa::OP_V_BN_BWD: return v_bn_bwd(cx, in);
    case isa::OP_V_LN: return v_ln(cx, in);
    case isa::OP_V_LN_BWD: return v_ln_bwd(cx, in);
    case isa::OP_V_SOFTMAX: return v_softmax(cx, in);
    case isa::OP_V_SOFTMAX_BWD: return v_softmax_bwd(cx, in);
    case isa::OP_V_XENT: return v_xent(cx, in);
    case isa::OP_V_PERMUTE: return v_permute(cx, in);
    default: return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  }
}

}  // namespace sat::kernel
