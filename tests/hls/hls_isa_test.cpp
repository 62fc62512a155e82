// The HLS kernel (C-simulation) instruction by instruction against CPU references: the host's N:M
// core, layers and loss where they exist, direct loops where not; every supported N:M plus dense;
// tiles with remainders; malformed streams end with the right status and message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/bf16.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"
#include "sat/arch/status_text.hpp"
#include "sat_hls/kernel.hpp"


using namespace sat;
using St = std::array<uint32_t, isa::kStatusWords>;

namespace {

constexpr uint8_t bit(int unit) { return static_cast<uint8_t>(1u << unit); }
constexpr uint8_t kLoad = bit(isa::UNIT_LOAD), kGemm = bit(isa::UNIT_GEMM), kVec = bit(isa::UNIT_VEC),
                  kStore = bit(isa::UNIT_STORE), kUpd = bit(isa::UNIT_UPD), kPgen = bit(isa::UNIT_PGEN);

isa::Insn mk(isa::Opcode op, uint8_t flags, std::initializer_list<std::pair<int, uint32_t>> fields,
             uint8_t wait = 0, uint8_t signal = 0) {
  isa::Insn in = isa::make_insn(op, flags);
  for (const auto& [f, v] : fields) in.w[f] = v;
  isa::set_wait(in, wait);
  isa::set_signal(in, signal);
  return in;
}
uint32_t fbits(float f) { return f32_bits(f); }

// Four DDR channels of halfwords with a bump allocator.
struct Dram {
  std::vector<uint16_t> ch[arch::kDdrChannels];
  uint64_t used[arch::kDdrChannels] = {};
  explicit Dram(size_t halfwords = size_t{1} << 20) {
    for (auto& c : ch) c.assign(halfwords, 0);
  }
  uint32_t alloc(int c, uint64_t halfwords) {
    const uint64_t off = used[c];
    used[c] += (halfwords + 7) & ~uint64_t{7};
    EXPECT_LE(used[c], ch[c].size()) << "test DRAM too small";
    return isa::make_addr(static_cast<uint32_t>(c), static_cast<uint32_t>(off));
  }
  uint16_t* at(uint32_t a) { return ch[isa::addr_channel(a)].data() + isa::addr_offset(a); }
  uint32_t put_bf16(int c, const std::vector<float>& v) {
    const uint32_t a = alloc(c, v.size());
    for (size_t i = 0; i < v.size(); ++i) at(a)[i] = f32_to_bf16_bits(v[i]);
    return a;
  }
  uint32_t put_u32(int c, const std::vector<uint32_t>& v) {
    const uint32_t a = alloc(c, 2 * v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      at(a)[2 * i] = static_cast<uint16_t>(v[i] & 0xffff);
      at(a)[2 * i + 1] = static_cast<uint16_t>(v[i] >> 16);
    }
    return a;
  }
  uint32_t put_f32(int c, const std::vector<float>& v) {
    std::vector<uint32_t> u(v.size());
    for (size_t i = 0; i < v.size(); ++i) u[i] = f32_bits(v[i]);
    return put_u32(c, u);
  }
  uint32_t put_bytes(int c, const std::vector<uint8_t>& b) {
    const uint32_t a = alloc(c, (b.size() + 1) / 2);
    for (size_t i = 0; i < b.size(); ++i) at(a)[i / 2] |= static_cast<uint16_t>(b[i] << (8 * (i % 2)));
    return a;
  }
  std::vector<float> bf16(uint32_t a, size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = bf16_bits_to_f32(at(a)[i]);
    return v;
  }
  std::vector<uint16_t> raw(uint32_t a, size_t n) { return {at(a), at(a) + n}; }
  uint32_t u32(uint32_t a, size_t i) { return at(a)[2 * i] | (static_cast<uint32_t>(at(a)[2 * i + 1]) << 16); }
  std::vector<float> f32(uint32_t a, size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = f32_from_bits(u32(a, i));
    return v;
  }
  St run(std::vector<isa::Insn> s, bool finish = true) {
    if (finish) s.push_back(isa::make_insn(isa::OP_FINISH));
    uint16_t* p[arch::kDdrChannels];
    uint64_t n[arch::kDdrChannels];
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      p[c] = ch[c].data();
      n[c] = ch[c].size();
    }
    return hls::run_kernel(s.data(), s.size(), p, n);
  }
};

#define EXPECT_OK(st) EXPECT_EQ((st)[0], isa::STATUS_OK) << isa::status_message(st)

std::vector<float> rnd(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = round_bf16(d(rng));
  return v;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (!(std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i]))) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
      ++bad;
    }
  }
}

// ---- GEMM streams --------------------------------------------------------------------------------

// The B operand of a product: dense W [n][k] at `addr` (row-major), or compressed N:M lines.
struct BOperand {
  bool sparse = false;
  uint32_t addr = 0;                     // dense
  uint32_t val = 0, idx = 0;             // sparse
  int n = 1, m = 1;
};

// C[M][N] = A[M][K] * B[N][K]^T with A row-major at a_addr, tiled (mt, nt, kt) over one bank each,
// stored FP32 row-major at c_addr. Tokens order every load after the previous GEMM and every GEMM
// that overwrites C after the previous store.
std::vector<isa::Insn> matmul_stream(uint32_t a_addr, const BOperand& b, uint32_t c_addr, int M, int N, int K,
                                     int mt, int nt, int kt) {
  std::vector<isa::Insn> s;
  bool gemm_before = false, store_before = false;
  struct Pending {
    size_t gemm = SIZE_MAX, store = SIZE_MAX;
  } last;
  for (int i0 = 0; i0 < M; i0 += mt) {
    for (int j0 = 0; j0 < N; j0 += nt) {
      const int tm = std::min(mt, M - i0), tn = std::min(nt, N - j0);
      for (int k0 = 0; k0 < K; k0 += kt) {
        const int tk = std::min(kt, K - k0);
        const uint8_t lw = gemm_before ? kGemm : 0;
        if (last.gemm != SIZE_MAX) isa::set_signal(s[last.gemm], s[last.gemm].signal() | kLoad);
        s.push_back(mk(isa::OP_LD_2D, 0,
                       {{isa::f_LD_2D::bank, 0}, {isa::f_LD_2D::rows, uint32_t(tm)}, {isa::f_LD_2D::cols, uint32_t(tk)},
                        {isa::f_LD_2D::addr, a_addr + uint32_t(i0 * K + k0)}, {isa::f_LD_2D::row_stride, uint32_t(K)},
                        {isa::f_LD_2D::col_stride, 1}},
                       lw, 0));
        if (!b.sparse) {
          s.push_back(mk(isa::OP_LD_2D, 1,
                         {{isa::f_LD_2D::bank, 0}, {isa::f_LD_2D::rows, uint32_t(tn)}, {isa::f_LD_2D::cols, uint32_t(tk)},
                          {isa::f_LD_2D::addr, b.addr + uint32_t(j0 * K + k0)}, {isa::f_LD_2D::row_stride, uint32_t(K)},
                          {isa::f_LD_2D::col_stride, 1}},
                         0, kGemm));
        } else {
          namespace f = isa::f_LD_SPW;
          s.push_back(mk(isa::OP_LD_SPW, 0,
                         {{f::bank, 0}, {f::rows, uint32_t(tn)}, {f::groups, uint32_t(tk / b.m)}, {f::n, uint32_t(b.n)},
                          {f::m, uint32_t(b.m)}, {f::val_addr, b.val}, {f::idx_addr, b.idx},
                          {f::line_groups, uint32_t(K / b.m)}, {f::l0, uint32_t(j0)}, {f::g0, uint32_t(k0 / b.m)}},
                         0, kGemm));
        }
        uint8_t gw = kLoad;
        if (k0 == 0 && store_before) {
          gw |= kStore;
          isa::set_signal(s[last.store], s[last.store].signal() | kGemm);
        }
        namespace g = isa::f_GEMM;
        s.push_back(mk(isa::OP_GEMM, static_cast<uint8_t>((k0 > 0 ? 1 : 0) | (b.sparse ? 2 : 0)),
                       {{g::a_bank, 0}, {g::b_bank, 0}, {g::c_bank, 0}, {g::mt, uint32_t(tm)}, {g::nt, uint32_t(tn)},
                        {g::kt, uint32_t(tk)}, {g::n, uint32_t(b.n)}, {g::m, uint32_t(b.m)}},
                       gw, 0));
        last.gemm = s.size() - 1;
        gemm_before = true;
      }
      isa::set_signal(s[last.gemm], s[last.gemm].signal() | kStore);
      namespace t = isa::f_ST_2D;
      s.push_back(mk(isa::OP_ST_2D, 1,
                     {{t::c_bank, 0}, {t::rows, uint32_t(tm)}, {t::cols, uint32_t(tn)},
                      {t::addr, c_addr + uint32_t(2 * (i0 * N + j0))}, {t::row_stride, uint32_t(N)}, {t::col_stride, 1}},
                     kGemm, 0));
      last.store = s.size() - 1;
      store_before = true;
    }
  }
  return s;
}

// Reference product in double of BF16 values: C[i][j] = sum_k A[i][k] * B[j][k], and the bound
// sum_k |A B| for the tolerance.
void ref_product(const std::vector<float>& a, const std::vector<float>& b, int M, int N, int K, std::vector<float>& c,
                 std::vector<float>& mag) {
  c.assign(size_t(M) * N, 0);
  mag.assign(size_t(M) * N, 0);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0, m = 0;
      for (int k = 0; k < K; ++k) {
        s += double(a[size_t(i) * K + k]) * b[size_t(j) * K + k];
        m += std::fabs(double(a[size_t(i) * K + k]) * b[size_t(j) * K + k]);
      }
      c[size_t(i) * N + j] = float(s);
      mag[size_t(i) * N + j] = float(m);
    }
}

void expect_product(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& mag,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (!(std::fabs(got[i] - want[i]) <= 2e-6 * mag[i] + 1e-30)) {
      ADD_FAILURE() << what << " C[" << i << "]: got " << got[i] << ", want " << want[i];
      ++bad;
    }
  }
}

}  // namespace

// ---- GEMM / LOAD / STORE --------------------------------------------------------------------------

TEST(HlsIsa, GemmDenseTiledWithRemainders) {
  const int M = 150, N = 140, K = 600;   // 128+22 rows, 128+12 columns, 512+88 of K
  Dram d;
  const auto a = rnd(size_t(M) * K, 1), w = rnd(size_t(N) * K, 2);
  BOperand b;
  b.addr = d.put_bf16(1, w);
  const uint32_t aa = d.put_bf16(0, a), ca = d.alloc(2, 2 * M * N);
  const St st = d.run(matmul_stream(aa, b, ca, M, N, K, 128, 128, 512));
  EXPECT_OK(st);
  std::vector<float> want, mag;
  ref_product(a, w, M, N, K, want, mag);
  expect_product(d.f32(ca, size_t(M) * N), want, mag, "dense");
}

TEST(HlsIsa, GemmSparseEveryNMEqualsDenseOfDecompressed) {
  const int M = 37, N = 40;
  for (int m : arch::kSupportedM) {
    for (int n : {1, m / 2, m - 1, m}) {
      if (n < 1 || (n == m - 1 && m == 2)) continue;
      const int K = 512 + 4 * 16;   // one full K tile and a remainder; divides by every M
      Dram d;
      std::vector<float> w32 = rnd(size_t(N) * K, 3 + m * 17 + n);
      const NMCompressed c = nm_compress(w32.data(), N, K, NM{n, m}, Axis::K);
      std::vector<float> wd(size_t(N) * K);
      nm_decompress(c, wd.data());
      const auto a = rnd(size_t(M) * K, 4);
      BOperand b;
      b.sparse = true;
      b.n = n;
      b.m = m;
      std::vector<float> vals(c.values.begin(), c.values.end());
      b.val = d.put_bf16(1, vals);
      b.idx = d.put_bytes(2, nm_pack_indices(c.index));
      const uint32_t aa = d.put_bf16(0, a), ca = d.alloc(3, 2 * M * N);
      // nt = 24 leaves a remainder of 16 lines: LD_SPW's l0 offset; kt = 512 its g0 offset.
      const St st = d.run(matmul_stream(aa, b, ca, M, N, K, 32, 24, 512));
      EXPECT_OK(st);
      std::vector<float> want, mag;
      ref_product(a, wd, M, N, K, want, mag);
      const std::string what = std::to_string(n) + ":" + std::to_string(m);
      expect_product(d.f32(ca, size_t(M) * N), want, mag, what);

      // The dense mode of the kernel on the decompressed weights gives the same product.
      BOperand bd;
      bd.addr = d.put_bf16(1, wd);
      const uint32_t cd = d.alloc(3, 2 * M * N);
      EXPECT_OK(d.run(matmul_stream(aa, bd, cd, M, N, K, 32, 24, 512)));
      expect_product(d.f32(cd, size_t(M) * N), d.f32(ca, size_t(M) * N), mag, what + " vs dense kernel");
    }
  }
}

TEST(HlsIsa, ReferencePeArrayMatchesFastPathBitForBit) {
  const int M = 45, N = 33, K = 136;   // not multiples of the PE array or the lanes
  for (int mode = 0; mode < 3; ++mode) {
    const NM nm = mode == 0 ? NM{1, 1} : mode == 1 ? NM{2, 8} : NM{3, 4};
    Dram d;
    std::vector<float> w = rnd(size_t(N) * K, 7 + mode);
    const auto a = rnd(size_t(M) * K, 8);
    BOperand b;
    if (mode == 0) {
      b.addr = d.put_bf16(1, w);
    } else {
      const NMCompressed c = nm_compress(w.data(), N, K, nm, Axis::K);
      b.sparse = true;
      b.n = nm.n;
      b.m = nm.m;
      b.val = d.put_bf16(1, std::vector<float>(c.values.begin(), c.values.end()));
      b.idx = d.put_bytes(2, nm_pack_indices(c.index));
    }
    const uint32_t aa = d.put_bf16(0, a), c1 = d.alloc(3, 2 * M * N), c2 = d.alloc(3, 2 * M * N);
    const auto s1 = matmul_stream(aa, b, c1, M, N, K, 40, 30, 64);
    const auto s2 = matmul_stream(aa, b, c2, M, N, K, 40, 30, 64);
    EXPECT_OK(d.run(s1));
    hls::set_reference_pe(true);
    const St st = d.run(s2);
    hls::set_reference_pe(false);
    EXPECT_OK(st);
    EXPECT_EQ(d.raw(c1, 2 * M * N), d.raw(c2, 2 * M * N)) << "mode " << mode;
  }
}

namespace {

struct Geom {
  int b, c, h, w, kh, kw, s, p, oh, ow;
  int P() const { return b * oh * ow; }
  int K() const { return c * kh * kw; }
};
// im2col of NHWC x: (p, k) with p = (b*oh + oy)*ow + ox, k = (ci*kh + ky)*kw + kx.
float im2col(const std::vector<float>& x, const Geom& g, int p, int k) {
  const int b = p / (g.oh * g.ow), oy = p / g.ow % g.oh, ox = p % g.ow;
  const int ci = k / (g.kh * g.kw), ky = k / g.kw % g.kh, kx = k % g.kw;
  const int iy = oy * g.s - g.p + ky, ix = ox * g.s - g.p + kx;
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return 0;
  return x[((size_t(b) * g.h + iy) * g.w + ix) * g.c + ci];
}
uint32_t kh_kw(const Geom& g) { return isa::pack16(g.kh, g.kw); }
uint32_t s_p(const Geom& g) { return isa::pack16(g.s, g.p); }

}  // namespace

TEST(HlsIsa, ConvolutionLoadsAndCol2im) {
  const Geom g{2, 3, 9, 7, 3, 3, 2, 1, 5, 4};
  const int P = g.P(), K = g.K(), Cout = 5;
  Dram d;
  const auto x = rnd(size_t(g.b) * g.h * g.w * g.c, 11), w = rnd(size_t(Cout) * K, 12), dy = rnd(size_t(P) * Cout, 13);
  const uint32_t xa = d.put_bf16(0, x), wa = d.put_bf16(1, w), dya = d.put_bf16(1, dy);
  const uint32_t ya = d.alloc(2, 2 * P * Cout), dwa = d.alloc(2, 2 * Cout * K);
  const uint32_t dxa = d.alloc(3, 2 * x.size());
  std::vector<isa::Insn> s;
  auto conv = [&](isa::Opcode op, uint8_t flags, int bank_or_c, int rows, int cols, uint32_t addr, int p0, int k0,
                  uint8_t wait, uint8_t signal) {
    namespace f = isa::f_LD_CONV;   // ST_COL2IM has the same field order
    static_assert(int(f::ow) == int(isa::f_ST_COL2IM::ow), "same field layout");
    return mk(op, flags,
              {{f::bank, uint32_t(bank_or_c)}, {f::rows, uint32_t(rows)}, {f::cols, uint32_t(cols)}, {f::addr, addr},
               {f::p0, uint32_t(p0)}, {f::k0, uint32_t(k0)}, {f::c, uint32_t(g.c)}, {f::h, uint32_t(g.h)},
               {f::w, uint32_t(g.w)}, {f::kh_kw, kh_kw(g)}, {f::stride_pad, s_p(g)}, {f::oh, uint32_t(g.oh)},
               {f::ow, uint32_t(g.ow)}},
              wait, signal);
  };
  namespace L = isa::f_LD_2D;
  namespace G = isa::f_GEMM;
  namespace T = isa::f_ST_2D;
  // FF: Y[p][co] = im2col(X)[p][k] W[co][k]; rows split 24 + 16 (p0), K split 16 + 11 (k0).
  for (int p0 = 0; p0 < P; p0 += 24) {
    const int tp = std::min(24, P - p0);
    for (int k0 = 0; k0 < K; k0 += 16) {
      const int tk = std::min(16, K - k0);
      s.push_back(conv(isa::OP_LD_CONV, 0, 0, tp, tk, xa, p0, k0, s.empty() ? 0 : kGemm, 0));
      s.push_back(mk(isa::OP_LD_2D, 1,
                     {{L::bank, 0}, {L::rows, uint32_t(Cout)}, {L::cols, uint32_t(tk)}, {L::addr, wa + uint32_t(k0)},
                      {L::row_stride, uint32_t(K)}, {L::col_stride, 1}},
                     0, kGemm));
      s.push_back(mk(isa::OP_GEMM, k0 ? 1 : 0,
                     {{G::mt, uint32_t(tp)}, {G::nt, uint32_t(Cout)}, {G::kt, uint32_t(tk)}, {G::n, 1}, {G::m, 1}},
                     kLoad | (k0 == 0 && p0 > 0 ? kStore : 0), kLoad | (k0 + 16 >= K ? kStore : 0)));
    }
    s.push_back(mk(isa::OP_ST_2D, 1,
                   {{T::rows, uint32_t(tp)}, {T::cols, uint32_t(Cout)}, {T::addr, ya + uint32_t(2 * p0 * Cout)},
                    {T::row_stride, uint32_t(Cout)}, {T::col_stride, 1}},
                   kGemm, kGemm));
  }
  // WU: dW[co][k] = dY^T[co][p] im2col^T[k][p]: A by LD_2D with strides (transposed dY), B by the
  // transposed LD_CONV; P split 24 + 16 as kt tiles (p0 of the transposed load).
  for (int p0 = 0; p0 < P; p0 += 24) {
    const int tp = std::min(24, P - p0);
    s.push_back(mk(isa::OP_LD_2D, 0,
                   {{L::rows, uint32_t(Cout)}, {L::cols, uint32_t(tp)}, {L::addr, dya + uint32_t(p0 * Cout)},
                    {L::row_stride, 1}, {L::col_stride, uint32_t(Cout)}},
                   kGemm, 0));
    s.push_back(conv(isa::OP_LD_CONV, 3, 0, K, tp, xa, p0, 0, 0, kGemm));
    s.push_back(mk(isa::OP_GEMM, p0 ? 1 : 0,
                   {{G::mt, uint32_t(Cout)}, {G::nt, uint32_t(K)}, {G::kt, uint32_t(tp)}, {G::n, 1}, {G::m, 1}},
                   kLoad | (p0 == 0 ? kStore : 0), kLoad | (p0 + 24 >= P ? kStore : 0)));
  }
  s.push_back(mk(isa::OP_ST_2D, 1,
                 {{T::rows, uint32_t(Cout)}, {T::cols, uint32_t(K)}, {T::addr, dwa}, {T::row_stride, uint32_t(K)},
                  {T::col_stride, 1}},
                 kGemm, kGemm));
  // BP: dcol[p][k] = dY[p][co] W^T[k][co] scatter-added by ST_COL2IM (p split 24 + 16).
  for (int p0 = 0; p0 < P; p0 += 24) {
    const int tp = std::min(24, P - p0);
    s.push_back(mk(isa::OP_LD_2D, 0,
                   {{L::rows, uint32_t(tp)}, {L::cols, uint32_t(Cout)}, {L::addr, dya + uint32_t(p0 * Cout)},
                    {L::row_stride, uint32_t(Cout)}, {L::col_stride, 1}},
                   kGemm, 0));
    s.push_back(mk(isa::OP_LD_2D, 1,
                   {{L::rows, uint32_t(K)}, {L::cols, uint32_t(Cout)}, {L::addr, wa}, {L::row_stride, 1},
                    {L::col_stride, uint32_t(K)}},
                   0, kGemm));
    s.push_back(mk(isa::OP_GEMM, 0, {{G::mt, uint32_t(tp)}, {G::nt, uint32_t(K)}, {G::kt, uint32_t(Cout)}},
                   kLoad | kStore, (p0 + 24 < P ? kLoad : 0) | kStore));
    s.push_back(conv(isa::OP_ST_COL2IM, 0, 0, tp, K, dxa, p0, 0, kGemm, p0 + 24 < P ? kGemm : 0));
  }
  const St st = d.run(s);
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);

  std::vector<float> y(size_t(P) * Cout), dw(size_t(Cout) * K), ymag(y.size()), dwmag(dw.size());
  std::vector<double> dx(x.size(), 0.0);
  for (int p = 0; p < P; ++p)
    for (int k = 0; k < K; ++k) {
      const float col = im2col(x, g, p, k);
      for (int co = 0; co < Cout; ++co) {
        y[size_t(p) * Cout + co] += col * w[size_t(co) * K + k];
        ymag[size_t(p) * Cout + co] += std::fabs(col * w[size_t(co) * K + k]);
        dw[size_t(co) * K + k] += dy[size_t(p) * Cout + co] * col;
        dwmag[size_t(co) * K + k] += std::fabs(dy[size_t(p) * Cout + co] * col);
      }
    }
  expect_product(d.f32(ya, y.size()), y, ymag, "conv FF");
  expect_product(d.f32(dwa, dw.size()), dw, dwmag, "conv WU");
  std::vector<float> dxw(x.size()), dxmag(x.size());
  for (int p = 0; p < P; ++p) {
    const int b = p / (g.oh * g.ow), oy = p / g.ow % g.oh, ox = p % g.ow;
    for (int k = 0; k < K; ++k) {
      const int ci = k / (g.kh * g.kw), ky = k / g.kw % g.kh, kx = k % g.kw;
      const int iy = oy * g.s - g.p + ky, ix = ox * g.s - g.p + kx;
      if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
      double v = 0, m = 0;
      for (int co = 0; co < Cout; ++co) {
        v += double(dy[size_t(p) * Cout + co]) * w[size_t(co) * K + k];
        m += std::fabs(double(dy[size_t(p) * Cout + co]) * w[size_t(co) * K + k]);
      }
      const size_t o = ((size_t(b) * g.h + iy) * g.w + ix) * g.c + ci;
      dxw[o] += float(v);
      dxmag[o] += float(m);
    }
  }
  expect_product(d.f32(dxa, x.size()), dxw, dxmag, "conv BP col2im");
}

// LD_CONV b3 (patch held): the tap-major tiles of one patch, the first loaded and the rest built
// from the buffer, give the same product bit for bit as loading every one; so does a later tile
// whose patch the held one covers (the second sample only: built at an offset into the buffer); a
// b3 load whose patch the held one does not cover is refused, naming the header.
TEST(HlsIsa, ConvPatchHeldBuildsFromTheBufferAndIsChecked) {
  const Geom g{2, 8, 4, 4, 3, 3, 1, 1, 4, 4};
  const int P = g.P(), Cout = 4, taps = g.kh * g.kw;
  const auto x = rnd(size_t(g.b) * g.h * g.w * g.c, 31), w = rnd(size_t(Cout) * g.K(), 32);
  namespace f = isa::f_LD_CONV;
  namespace L = isa::f_LD_2D;
  namespace G = isa::f_GEMM;
  namespace T = isa::f_ST_2D;
  // bad_tap >= 0: the taps before it hold only the first sample's patch, and tap bad_tap (b3) asks
  // for both samples'.
  auto run = [&](bool hold, int bad_tap, St* status, std::vector<float>* second) {
    Dram d;
    const uint32_t xa = d.put_bf16(0, x), wa = d.put_bf16(1, w), ya = d.alloc(2, 2 * P * Cout);
    const uint32_t ya2 = d.alloc(2, 2 * P * Cout);
    auto ld_conv = [&](uint8_t flags, int rows, int p0, int t, uint8_t wait) {
      return mk(isa::OP_LD_CONV, flags,
                {{f::bank, 0}, {f::rows, uint32_t(rows)}, {f::cols, uint32_t(g.c)}, {f::addr, xa}, {f::p0, uint32_t(p0)},
                 {f::k0, uint32_t(t * g.c)}, {f::c, uint32_t(g.c)}, {f::h, uint32_t(g.h)}, {f::w, uint32_t(g.w)},
                 {f::kh_kw, kh_kw(g)}, {f::stride_pad, s_p(g)}, {f::oh, uint32_t(g.oh)}, {f::ow, uint32_t(g.ow)}},
                wait, 0);
    };
    auto ld_w = [&](int t) {
      return mk(isa::OP_LD_2D, 1,
                {{L::bank, 0}, {L::rows, uint32_t(Cout)}, {L::cols, uint32_t(g.c)}, {L::addr, wa + uint32_t(t * g.c)},
                 {L::row_stride, uint32_t(g.K())}, {L::col_stride, 1}},
                0, kGemm);
    };
    std::vector<isa::Insn> s;
    for (int t = 0; t < taps; ++t) {
      const int rows = bad_tap >= 0 && t < bad_tap ? P / 2 : P;
      s.push_back(ld_conv(uint8_t(4 | (hold && t > 0 ? 8 : 0)), rows, 0, t, t ? kGemm : 0));
      s.push_back(ld_w(t));
      const bool last = t + 1 == taps;
      s.push_back(mk(isa::OP_GEMM, t ? 1 : 0,
                     {{G::mt, uint32_t(P)}, {G::nt, uint32_t(Cout)}, {G::kt, uint32_t(g.c)}, {G::n, 1}, {G::m, 1}},
                     kLoad, uint8_t((!last || second ? kLoad : 0) | (last ? kStore : 0))));
    }
    s.push_back(mk(isa::OP_ST_2D, 1,
                   {{T::rows, uint32_t(P)}, {T::cols, uint32_t(Cout)}, {T::addr, ya}, {T::row_stride, uint32_t(Cout)},
                    {T::col_stride, 1}},
                   kGemm, 0));
    if (second) {   // tap 4 of the second sample alone, into C bank 1
      s.push_back(ld_conv(uint8_t(4 | (hold ? 8 : 0)), P / 2, P / 2, 4, kGemm));
      s.push_back(ld_w(4));
      s.push_back(mk(isa::OP_GEMM, 0,
                     {{G::c_bank, 1}, {G::mt, uint32_t(P / 2)}, {G::nt, uint32_t(Cout)}, {G::kt, uint32_t(g.c)}, {G::n, 1}, {G::m, 1}},
                     kLoad, kStore));
      s.push_back(mk(isa::OP_ST_2D, 1,
                     {{T::c_bank, 1}, {T::rows, uint32_t(P / 2)}, {T::cols, uint32_t(Cout)}, {T::addr, ya2},
                      {T::row_stride, uint32_t(Cout)}, {T::col_stride, 1}},
                     kGemm, 0));
    }
    *status = d.run(s);
    if (second) *second = d.f32(ya2, size_t(P / 2) * Cout);
    return d.f32(ya, size_t(P) * Cout);
  };
  St st_loaded, st_held, st_bad;
  std::vector<float> second_loaded, second_held;
  const auto loaded = run(false, -1, &st_loaded, &second_loaded);
  const auto held = run(true, -1, &st_held, &second_held);
  ASSERT_EQ(st_loaded[0], isa::STATUS_OK) << isa::status_message(st_loaded);
  ASSERT_EQ(st_held[0], isa::STATUS_OK) << isa::status_message(st_held);
  ASSERT_EQ(loaded.size(), held.size());
  for (size_t i = 0; i < loaded.size(); ++i) ASSERT_EQ(f32_bits(loaded[i]), f32_bits(held[i])) << i;
  for (size_t i = 0; i < second_loaded.size(); ++i) ASSERT_EQ(f32_bits(second_loaded[i]), f32_bits(second_held[i])) << i;
  // Nonzero: the windows did reach the input.
  EXPECT_NE(std::count(loaded.begin(), loaded.end(), 0.0f), static_cast<long>(loaded.size()));
  EXPECT_NE(std::count(second_held.begin(), second_held.end(), 0.0f), static_cast<long>(second_held.size()));
  run(true, 4, &st_bad, nullptr);
  EXPECT_EQ(st_bad[0], isa::STATUS_BAD_FIELD) << isa::status_message(st_bad);
  EXPECT_EQ(st_bad[isa::STW_INDEX], 4u * 3u) << "the fifth tap's LD_CONV";
  EXPECT_EQ(st_bad[isa::STW_FIELD], 0u);
}

TEST(HlsIsa, Store2dRoundingBiasAccumulateStrides) {
  // C = X exactly: B is the identity, so each output is a single product x * 1.
  const int M = 19, N = 12;
  Dram d;
  auto x = rnd(size_t(M) * N, 21, 3.0f);
  x[5] = 1.0f + 1.0f / 128;   // a BF16 value; the bias makes the sum need rounding
  std::vector<float> eye(size_t(N) * N, 0.0f);
  for (int i = 0; i < N; ++i) eye[size_t(i) * N + i] = 1.0f;
  const std::vector<float> bias = {0.3f, -1.7f, 2e-3f, 5.0f, -0.1f, 1e-4f, 7.25f, 0.0f, -3.3f, 0.01f, 1.0f, -2.0f};
  std::vector<float> acc0 = rnd(size_t(M) * N, 22);
  const uint32_t xa = d.put_bf16(0, x), ea = d.put_bf16(0, eye), ba = d.put_f32(1, bias);
  const uint32_t out_bf = d.alloc(2, size_t(M) * N), out_t = d.alloc(2, size_t(M) * N * 2);
  const uint32_t out_acc = d.put_f32(3, acc0);
  namespace L = isa::f_LD_2D;
  namespace T = isa::f_ST_2D;
  std::vector<isa::Insn> s = {
      mk(isa::OP_LD_2D, 0, {{L::rows, uint32_t(M)}, {L::cols, uint32_t(N)}, {L::addr, xa}, {L::row_stride, uint32_t(N)}, {L::col_stride, 1}}),
      mk(isa::OP_LD_2D, 1, {{L::rows, uint32_t(N)}, {L::cols, uint32_t(N)}, {L::addr, ea}, {L::row_stride, uint32_t(N)}, {L::col_stride, 1}}, 0, kGemm),
      mk(isa::OP_GEMM, 0, {{isa::f_GEMM::mt, uint32_t(M)}, {isa::f_GEMM::nt, uint32_t(N)}, {isa::f_GEMM::kt, uint32_t(N)}}, kLoad, kStore),
      // BF16 with bias, row-major.
      mk(isa::OP_ST_2D, 4, {{T::rows, uint32_t(M)}, {T::cols, uint32_t(N)}, {T::addr, out_bf}, {T::row_stride, uint32_t(N)}, {T::col_stride, 1}, {T::bias_addr, ba}}, kGemm),
      // FP32, transposed (column-major) through the strides.
      mk(isa::OP_ST_2D, 1, {{T::rows, uint32_t(M)}, {T::cols, uint32_t(N)}, {T::addr, out_t}, {T::row_stride, 1}, {T::col_stride, uint32_t(M)}}),
      // FP32 with bias added into DRAM.
      mk(isa::OP_ST_2D, 7, {{T::rows, uint32_t(M)}, {T::cols, uint32_t(N)}, {T::addr, out_acc}, {T::row_stride, uint32_t(N)}, {T::col_stride, 1}, {T::bias_addr, ba}}),
  };
  const St st = d.run(s);
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  const auto got_bf = d.raw(out_bf, size_t(M) * N);
  const auto got_t = d.f32(out_t, size_t(M) * N);
  const auto got_acc = d.f32(out_acc, size_t(M) * N);
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) {
      const size_t i = size_t(r) * N + c;
      EXPECT_EQ(got_bf[i], f32_to_bf16_bits(x[i] + bias[c])) << i;
      EXPECT_EQ(got_t[size_t(c) * M + r], x[i]) << i;
      EXPECT_EQ(got_acc[i], acc0[i] + (x[i] + bias[c])) << i;
    }
  // b1 (add into DRAM) needs FP32 output.
  const St bad = d.run({mk(isa::OP_ST_2D, 2, {{T::rows, 1}, {T::cols, 1}, {T::addr, out_acc}, {T::row_stride, 1}, {T::col_stride, 1}})});
  EXPECT_EQ(bad[0], isa::STATUS_BAD_FIELD) << isa::status_message(bad);
}

TEST(HlsIsa, Store2dRowsInLinesWriteOnePhaseOfATensor) {
  // C = X (identity B), M = 19 rows stored as rows of lines of 4: row q = row0 + r of line q / 4,
  // the phase (1, 0) of an image [h = 12][w = 7][c = 12]: line L at image row 2L + 1, place j at
  // column 2j. Positions the store does not reach keep their sentinel.
  const int M = 19, N = 12, W = 7, H = 12, row0 = 3, LR = 4;
  Dram d;
  const auto x = rnd(size_t(M) * N, 23, 3.0f);
  std::vector<float> eye(size_t(N) * N, 0.0f);
  for (int i = 0; i < N; ++i) eye[size_t(i) * N + i] = 1.0f;
  const uint32_t xa = d.put_bf16(0, x), ea = d.put_bf16(0, eye);
  const std::vector<float> sentinel(size_t(H) * W * N, -9.0f);
  const uint32_t img = d.put_bf16(2, sentinel);
  namespace L = isa::f_LD_2D;
  namespace T = isa::f_ST_2D;
  // The tile's first row is place 3 of line 0, so the first row lands at image row 1, column 6.
  const uint32_t at = img + uint32_t((1 * W + 0) * N);
  auto prog = [&](uint32_t r0, uint32_t lr) {
    return std::vector<isa::Insn>{
        mk(isa::OP_LD_2D, 0, {{L::rows, uint32_t(M)}, {L::cols, uint32_t(N)}, {L::addr, xa}, {L::row_stride, uint32_t(N)}, {L::col_stride, 1}}),
        mk(isa::OP_LD_2D, 1, {{L::rows, uint32_t(N)}, {L::cols, uint32_t(N)}, {L::addr, ea}, {L::row_stride, uint32_t(N)}, {L::col_stride, 1}}, 0, kGemm),
        mk(isa::OP_GEMM, 0, {{isa::f_GEMM::mt, uint32_t(M)}, {isa::f_GEMM::nt, uint32_t(N)}, {isa::f_GEMM::kt, uint32_t(N)}}, kLoad, kStore),
        mk(isa::OP_ST_2D, 8, {{T::rows, uint32_t(M)}, {T::cols, uint32_t(N)}, {T::addr, at}, {T::row_stride, uint32_t(2 * N)},
                              {T::col_stride, 1}, {T::row0, r0}, {T::line_rows, lr}, {T::line_stride, uint32_t(2 * W * N)}}, kGemm),
    };
  };
  const St st = d.run(prog(row0, LR));
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  const auto got = d.raw(img, size_t(H) * W * N);
  std::vector<uint16_t> want(got.size(), f32_to_bf16_bits(-9.0f));
  for (int r = 0; r < M; ++r) {
    const int q = row0 + r, line = q / LR, j = q % LR;
    for (int c = 0; c < N; ++c) want[size_t(((2 * line + 1) * W + 2 * j) * N + c)] = f32_to_bf16_bits(x[size_t(r) * N + c]);
  }
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
  // line_rows 0 and row0 outside its line are bad fields.
  const St no_lines = d.run(prog(0, 0));
  EXPECT_EQ(no_lines[0], isa::STATUS_BAD_FIELD) << isa::status_message(no_lines);
  EXPECT_EQ(no_lines[isa::STW_FIELD], uint32_t(T::line_rows));
  const St far = d.run(prog(LR, LR));
  EXPECT_EQ(far[0], isa::STATUS_BAD_FIELD) << isa::status_message(far);
  EXPECT_EQ(far[isa::STW_FIELD], uint32_t(T::row0));
  // The extent is that of the farthest row: 3 + 18 = row 21 is place 1 of line 5, 5*168 + 24
  // halfwords in, plus a row of 12. A tile placed 870 halfwords before the channel's end fits its
  // first lines but not its last row.
  std::vector<isa::Insn> tail = prog(row0, LR);
  tail[3].w[T::addr] = isa::make_addr(2, uint32_t(d.ch[2].size() - 870));
  const St past = d.run(tail);
  EXPECT_EQ(past[0], isa::STATUS_BAD_ADDRESS) << isa::status_message(past);

  // b4: the same rows get zeros, with no GEMM before it (no C bank is read); b4 with a bias (b2)
  // is a bad header.
  const St zero = d.run({mk(isa::OP_ST_2D, 8 | 16,
                            {{T::rows, uint32_t(M)}, {T::cols, uint32_t(N)}, {T::addr, at}, {T::row_stride, uint32_t(2 * N)},
                             {T::col_stride, 1}, {T::row0, uint32_t(row0)}, {T::line_rows, uint32_t(LR)},
                             {T::line_stride, uint32_t(2 * W * N)}})});
  ASSERT_EQ(zero[0], isa::STATUS_OK) << isa::status_message(zero);
  const auto zeroed = d.raw(img, size_t(H) * W * N);
  for (size_t i = 0; i < zeroed.size(); ++i) {
    const bool stored = want[i] != f32_to_bf16_bits(-9.0f);
    ASSERT_EQ(zeroed[i], stored ? uint16_t{0} : f32_to_bf16_bits(-9.0f)) << i;
  }
  const St zero_bias = d.run({mk(isa::OP_ST_2D, 16 | 4, {{T::rows, 1}, {T::cols, 1}, {T::addr, at}, {T::row_stride, 1}, {T::col_stride, 1}})});
  EXPECT_EQ(zero_bias[0], isa::STATUS_BAD_FIELD) << isa::status_message(zero_bias);
}

// ---- Vector unit -----------------------------------------------------------------------------------

TEST(HlsIsa, ElementwiseFillConvertAddBroadcastColsum) {
  Dram d;
  const int R = 13, C = 21, n = R * C;
  const auto a = rnd(n, 31), b = rnd(n, 32), p = rnd(C, 33);
  const uint32_t a16 = d.put_bf16(0, a), b16 = d.put_bf16(0, b);
  std::vector<float> a32v(n);
  for (int i = 0; i < n; ++i) a32v[i] = a[i] * 1.001f;   // not BF16 values
  const uint32_t a32 = d.put_f32(1, a32v), p32 = d.put_f32(1, p);
  const uint32_t fill16 = d.alloc(2, n), fill32 = d.alloc(2, 2 * n), conv = d.alloc(2, n);
  const uint32_t add1 = d.alloc(3, n), add2 = d.alloc(3, 2 * n), bc = d.alloc(3, n);
  const std::vector<float> y0 = rnd(C, 34);
  const uint32_t cs = d.alloc(3, 2 * C), cs_add = d.put_f32(3, y0);
  namespace V = isa;
  std::vector<isa::Insn> s = {
      mk(isa::OP_V_FILL, 0, {{V::f_V_FILL::y, fill16}, {V::f_V_FILL::count, uint32_t(n)}, {V::f_V_FILL::value, fbits(0.3f)}}),
      mk(isa::OP_V_FILL, 1, {{V::f_V_FILL::y, fill32}, {V::f_V_FILL::count, uint32_t(n)}, {V::f_V_FILL::value, fbits(0.3f)}}),
      mk(isa::OP_V_CONVERT, 0, {{V::f_V_CONVERT::x, a32}, {V::f_V_CONVERT::y, conv}, {V::f_V_CONVERT::count, uint32_t(n)}}),
      mk(isa::OP_V_ADD, 0, {{V::f_V_ADD::a, a16}, {V::f_V_ADD::b, b16}, {V::f_V_ADD::y, add1}, {V::f_V_ADD::count, uint32_t(n)}}),
      mk(isa::OP_V_ADD, 5, {{V::f_V_ADD::a, a32}, {V::f_V_ADD::b, b16}, {V::f_V_ADD::y, add2}, {V::f_V_ADD::count, uint32_t(n)}}),
      mk(isa::OP_V_BCAST_ADD, 0, {{V::f_V_BCAST_ADD::x, a16}, {V::f_V_BCAST_ADD::p, p32}, {V::f_V_BCAST_ADD::y, bc}, {V::f_V_BCAST_ADD::rows, uint32_t(R)}, {V::f_V_BCAST_ADD::cols, uint32_t(C)}}),
      mk(isa::OP_V_COLSUM, 0, {{V::f_V_COLSUM::x, a16}, {V::f_V_COLSUM::y, cs}, {V::f_V_COLSUM::rows, uint32_t(R)}, {V::f_V_COLSUM::cols, uint32_t(C)}}),
      mk(isa::OP_V_COLSUM, 1, {{V::f_V_COLSUM::x, a16}, {V::f_V_COLSUM::y, cs_add}, {V::f_V_COLSUM::rows, uint32_t(R)}, {V::f_V_COLSUM::cols, uint32_t(C)}}),
  };
  const St st = d.run(s);
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(d.at(fill16)[i], f32_to_bf16_bits(0.3f));
    EXPECT_EQ(d.u32(fill32, i), f32_bits(0.3f));
    EXPECT_EQ(d.at(conv)[i], f32_to_bf16_bits(a32v[i]));
    EXPECT_EQ(d.at(add1)[i], f32_to_bf16_bits(a[i] + b[i]));
    EXPECT_EQ(d.u32(add2, i), f32_bits(a32v[i] + b[i]));
    EXPECT_EQ(d.at(bc)[i], f32_to_bf16_bits(a[i] + p[i % C]));
  }
  for (int c = 0; c < C; ++c) {   // the CPU's bias gradient: grad[c] += g[r][c], rows in order
    float s0 = 0, s1 = y0[c];
    for (int r = 0; r < R; ++r) {
      s0 += a[size_t(r) * C + c];
      s1 += a[size_t(r) * C + c];
    }
    EXPECT_EQ(d.f32(cs, C)[c], s0);
    EXPECT_EQ(d.f32(cs_add, C)[c], s1);
  }
}

namespace {

// NCHW <-> NHWC for the CPU layers (which are NCHW) against the kernel (NHWC).
std::vector<float> to_nhwc(const std::vector<float>& v, int b, int c, int hw) {
  std::vector<float> o(v.size());
  for (int i = 0; i < b; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int p = 0; p < hw; ++p) o[(size_t(i) * hw + p) * c + ch] = v[(size_t(i) * c + ch) * hw + p];
  return o;
}
std::vector<float> to_nchw(const std::vector<float>& v, int b, int c, int hw) {
  std::vector<float> o(v.size());
  for (int i = 0; i < b; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int p = 0; p < hw; ++p) o[(size_t(i) * c + ch) * hw + p] = v[(size_t(i) * hw + p) * c + ch];
  return o;
}

}  // namespace

TEST(HlsIsa, ReluAndGeluMatchTheLayers) {
  const int n = 500;
  auto x = rnd(n, 41, 2.0f);
  x[0] = 0.0f;
  x[1] = -0.0f;
  x[2] = std::nanf("");
  const auto dy = rnd(n, 42);
  for (const char* spec : {R"({"type": "relu"})", R"({"type": "gelu"})", R"({"type": "gelu", "approximate": "tanh"})"}) {
    auto layer = test::build_layer(spec, {n});
    const StepContext ctx;
    const Tensor y = layer->forward(Tensor::from_f32({1, n}, x), ctx);
    const Tensor dx = layer->backward(Tensor::from_f32({1, n}, dy), ctx);
    Dram d;
    const uint32_t xa = d.put_bf16(0, x), dya = d.put_bf16(0, dy), ya = d.alloc(1, n), dxa = d.alloc(1, n);
    const bool relu = std::string(spec).find("relu") != std::string::npos;
    const uint8_t fl = std::string(spec).find("tanh") != std::string::npos ? 1 : 0;
    std::vector<isa::Insn> s;
    if (relu) {
      s.push_back(mk(isa::OP_V_RELU, 0, {{isa::f_V_RELU::x, xa}, {isa::f_V_RELU::y, ya}, {isa::f_V_RELU::count, uint32_t(n)}}));
      s.push_back(mk(isa::OP_V_RELU_BWD, 0, {{isa::f_V_RELU_BWD::x, xa}, {isa::f_V_RELU_BWD::dy, dya}, {isa::f_V_RELU_BWD::dx, dxa}, {isa::f_V_RELU_BWD::count, uint32_t(n)}}));
    } else {
      s.push_back(mk(isa::OP_V_GELU, fl, {{isa::f_V_GELU::x, xa}, {isa::f_V_GELU::y, ya}, {isa::f_V_GELU::count, uint32_t(n)}}));
      s.push_back(mk(isa::OP_V_GELU_BWD, fl, {{isa::f_V_GELU_BWD::x, xa}, {isa::f_V_GELU_BWD::dy, dya}, {isa::f_V_GELU_BWD::dx, dxa}, {isa::f_V_GELU_BWD::count, uint32_t(n)}}));
    }
    const St st = d.run(s);
    ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
    const bf16* yw = y.bf16_data();
    const bf16* dxw = dx.bf16_data();
    for (int i = 0; i < n; ++i) {   // same formulas in the same precision: identical bits
      EXPECT_EQ(d.at(ya)[i], yw[i].bits) << spec << " y[" << i << "] x=" << x[i];
      EXPECT_EQ(d.at(dxa)[i], dxw[i].bits) << spec << " dx[" << i << "] x=" << x[i];
    }
  }
}

TEST(HlsIsa, PoolingMatchesTheLayers) {
  struct Case {
    const char* type;
    int k, s, p;
  };
  const int B = 2, C = 5, H = 9, W = 8;
  for (const Case& cs : {Case{"maxpool2d", 2, 2, 0}, Case{"maxpool2d", 3, 2, 1}, Case{"avgpool2d", 3, 2, 1},
                         Case{"avgpool2d", 2, 2, 0}, Case{"maxpool2d", 3, 1, 1}}) {
    const std::string spec = std::string(R"({"type": ")") + cs.type + R"(", "kernel": )" + std::to_string(cs.k) +
                             R"(, "stride": )" + std::to_string(cs.s) + R"(, "padding": )" + std::to_string(cs.p) + "}";
    auto layer = test::build_layer(spec, {C, H, W});
    const int OH = int(layer->out_shape[1]), OW = int(layer->out_shape[2]);
    auto x = rnd(size_t(B) * C * H * W, 51);
    for (size_t i = 0; i < x.size(); i += 7) x[i] = x[i + 1];   // ties
    const auto dy = rnd(size_t(B) * C * OH * OW, 52);
    const StepContext ctx;
    const auto y = layer->forward(Tensor::from_f32({B, C, H, W}, x), ctx).to_f32();
    const auto dx = layer->backward(Tensor::from_f32({B, C, OH, OW}, dy), ctx).to_f32();
    Dram d;
    const uint32_t xa = d.put_bf16(0, to_nhwc(x, B, C, H * W)), dya = d.put_bf16(0, to_nhwc(dy, B, C, OH * OW));
    const uint32_t ya = d.alloc(1, y.size()), dxa = d.alloc(1, x.size());
    const uint8_t avg = cs.type[0] == 'a' ? 1 : 0;
    const uint32_t khkw = isa::pack16(cs.k, cs.k), sp = isa::pack16(cs.s, cs.p);
    namespace P = isa::f_V_POOL;
    namespace Q = isa::f_V_POOL_BWD;
    const St st = d.run({
        mk(isa::OP_V_POOL, avg, {{P::x, xa}, {P::y, ya}, {P::b, B}, {P::c, C}, {P::h, H}, {P::w, W}, {P::kh_kw, khkw}, {P::stride_pad, sp}, {P::oh, uint32_t(OH)}, {P::ow, uint32_t(OW)}}),
        mk(isa::OP_V_POOL_BWD, avg, {{Q::x, xa}, {Q::dy, dya}, {Q::dx, dxa}, {Q::b, B}, {Q::c, C}, {Q::h, H}, {Q::w, W}, {Q::kh_kw, khkw}, {Q::stride_pad, sp}, {Q::oh, uint32_t(OH)}, {Q::ow, uint32_t(OW)}}),
    });
    ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
    EXPECT_EQ(to_nchw(d.bf16(ya, y.size()), B, C, OH * OW), y) << spec;
    const auto got_dx = to_nchw(d.bf16(dxa, x.size()), B, C, H * W);
    for (size_t i = 0; i < dx.size(); ++i) ASSERT_EQ(got_dx[i], dx[i]) << spec << " dx[" << i << "]";
  }
  // A window count that leaves a window without a real element is a bad field.
  Dram d;
  namespace P = isa::f_V_POOL;
  const St st = d.run({mk(isa::OP_V_POOL, 0, {{P::x, 0}, {P::y, 0}, {P::b, 1}, {P::c, 1}, {P::h, 4}, {P::w, 4}, {P::kh_kw, isa::pack16(2, 2)}, {P::stride_pad, isa::pack16(2, 0)}, {P::oh, 3}, {P::ow, 2}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD) << isa::status_message(st);
  EXPECT_NE(isa::status_message(st).find("'oh'"), std::string::npos) << isa::status_message(st);
}

TEST(HlsIsa, BatchNormMatchesTheLayer) {
  const int B = 3, C = 6, H = 5, W = 4, rows = B * H * W;
  auto layer = test::build_layer(R"({"type": "batchnorm2d"})", {C, H, W});
  std::vector<Param*> ps;
  layer->params(ps);   // gamma, beta, running_mean, running_var
  ps[0]->value = rnd(C, 61);
  ps[1]->value = rnd(C, 62);
  ps[2]->value = rnd(C, 63, 0.1f);
  for (auto& v : ps[3]->value) v = 1.5f;
  const auto run_mean0 = ps[2]->value, run_var0 = ps[3]->value;
  auto x = rnd(size_t(B) * C * H * W, 64, 2.0f);
  for (auto& v : x) v = round_bf16(v + 3.0f);
  const auto dy = rnd(x.size(), 65);
  const StepContext train;
  const auto y = layer->forward(Tensor::from_f32({B, C, H, W}, x), train).to_f32();
  const auto dx = layer->backward(Tensor::from_f32({B, C, H, W}, dy), train).to_f32();
  StepContext eval;
  eval.training = false;
  const auto y_eval = layer->forward(Tensor::from_f32({B, C, H, W}, x), eval).to_f32();

  Dram d;
  const uint32_t xa = d.put_bf16(0, to_nhwc(x, B, C, H * W)), dya = d.put_bf16(0, to_nhwc(dy, B, C, H * W));
  const uint32_t ga = d.put_f32(1, ps[0]->value), ba = d.put_f32(1, ps[1]->value);
  const uint32_t rma = d.put_f32(1, run_mean0), rva = d.put_f32(1, run_var0);
  const uint32_t ma = d.alloc(1, 2 * C), ra = d.alloc(1, 2 * C), dga = d.alloc(1, 2 * C), dba = d.alloc(1, 2 * C);
  const uint32_t ya = d.alloc(2, x.size()), dxa = d.alloc(2, x.size()), yea = d.alloc(2, x.size());
  namespace N = isa::f_V_BN;
  namespace M = isa::f_V_BN_BWD;
  auto bn = [&](uint8_t fl, uint32_t out) {
    return mk(isa::OP_V_BN, fl, {{N::x, xa}, {N::y, out}, {N::gamma, ga}, {N::beta, ba}, {N::mean, ma}, {N::rstd, ra}, {N::run_mean, rma}, {N::run_var, rva}, {N::rows, uint32_t(rows)}, {N::c, uint32_t(C)}, {N::eps, fbits(1e-5f)}, {N::momentum, fbits(0.1f)}});
  };
  const St st = d.run({
      bn(1, ya),
      mk(isa::OP_V_BN_BWD, 0, {{M::x, xa}, {M::dy, dya}, {M::dx, dxa}, {M::gamma, ga}, {M::dgamma, dga}, {M::dbeta, dba}, {M::mean, ma}, {M::rstd, ra}, {M::rows, uint32_t(rows)}, {M::c, uint32_t(C)}}),
      bn(0, yea),
  });
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  expect_close(to_nchw(d.bf16(ya, y.size()), B, C, H * W), y, 1.0 / 128, 1e-6, "bn y");
  expect_close(to_nchw(d.bf16(dxa, x.size()), B, C, H * W), dx, 1.0 / 128, 1e-4, "bn dx");
  expect_close(to_nchw(d.bf16(yea, y.size()), B, C, H * W), y_eval, 1.0 / 128, 1e-6, "bn eval y");
  expect_close(d.f32(rma, C), ps[2]->value, 1e-6, 1e-7, "running mean");
  expect_close(d.f32(rva, C), ps[3]->value, 1e-6, 1e-7, "running var");
  expect_close(d.f32(dga, C), ps[0]->grad, 1e-4, 1e-4, "dgamma");
  expect_close(d.f32(dba, C), ps[1]->grad, 1e-6, 1e-6, "dbeta");
}

TEST(HlsIsa, LayerNormMatchesTheLayer) {
  const int B = 2, T = 7, D = 40, rows = B * T;
  auto layer = test::build_layer(R"({"type": "layernorm"})", {T, D});
  std::vector<Param*> ps;
  layer->params(ps);
  ps[0]->value = rnd(D, 71);
  ps[1]->value = rnd(D, 72);
  const auto x = rnd(size_t(rows) * D, 73, 3.0f), dy = rnd(size_t(rows) * D, 74);
  const StepContext ctx;
  const auto y = layer->forward(Tensor::from_f32({B, T, D}, x), ctx).to_f32();
  const auto dx = layer->backward(Tensor::from_f32({B, T, D}, dy), ctx).to_f32();
  Dram d;
  const uint32_t xa = d.put_bf16(0, x), dya = d.put_bf16(0, dy), ga = d.put_f32(1, ps[0]->value), ba = d.put_f32(1, ps[1]->value);
  const uint32_t ma = d.alloc(1, 2 * rows), ra = d.alloc(1, 2 * rows), dga = d.alloc(1, 2 * D), dba = d.alloc(1, 2 * D);
  const uint32_t ya = d.alloc(2, x.size()), dxa = d.alloc(2, x.size());
  namespace N = isa::f_V_LN;
  namespace M = isa::f_V_LN_BWD;
  const St st = d.run({
      mk(isa::OP_V_LN, 0, {{N::x, xa}, {N::y, ya}, {N::gamma, ga}, {N::beta, ba}, {N::mean, ma}, {N::rstd, ra}, {N::rows, uint32_t(rows)}, {N::d, uint32_t(D)}, {N::eps, fbits(1e-5f)}}),
      mk(isa::OP_V_LN_BWD, 0, {{M::x, xa}, {M::dy, dya}, {M::dx, dxa}, {M::gamma, ga}, {M::dgamma, dga}, {M::dbeta, dba}, {M::mean, ma}, {M::rstd, ra}, {M::rows, uint32_t(rows)}, {M::d, uint32_t(D)}}),
  });
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  expect_close(d.bf16(ya, y.size()), y, 1.0 / 128, 1e-6, "ln y");
  expect_close(d.bf16(dxa, x.size()), dx, 1.0 / 128, 1e-4, "ln dx");
  expect_close(d.f32(dga, D), ps[0]->grad, 1e-4, 1e-4, "ln dgamma");
  expect_close(d.f32(dba, D), ps[1]->grad, 1e-6, 1e-6, "ln dbeta");
}

TEST(HlsIsa, SoftmaxForwardBackward) {
  const int R = 9, C = 33;
  const float scale = 0.25f;
  const auto x = rnd(size_t(R) * C, 81, 4.0f), dy = rnd(size_t(R) * C, 82);
  Dram d;
  const uint32_t xa = d.put_bf16(0, x), dya = d.put_bf16(0, dy), ya = d.alloc(1, x.size()), dxa = d.alloc(1, x.size());
  namespace S = isa::f_V_SOFTMAX;
  namespace T = isa::f_V_SOFTMAX_BWD;
  const St st = d.run({
      mk(isa::OP_V_SOFTMAX, 0, {{S::x, xa}, {S::y, ya}, {S::rows, uint32_t(R)}, {S::cols, uint32_t(C)}, {S::scale, fbits(scale)}}, 0, kVec),
      mk(isa::OP_V_SOFTMAX_BWD, 0, {{T::y, ya}, {T::dy, dya}, {T::dx, dxa}, {T::rows, uint32_t(R)}, {T::cols, uint32_t(C)}, {T::scale, fbits(scale)}}, kVec),
  });
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  const auto y = d.bf16(ya, x.size());
  std::vector<float> want_y(x.size()), want_dx(x.size());
  for (int r = 0; r < R; ++r) {
    double mx = -1e30, sum = 0, dot = 0;
    for (int c = 0; c < C; ++c) mx = std::max(mx, double(scale) * x[size_t(r) * C + c]);
    for (int c = 0; c < C; ++c) sum += std::exp(double(scale) * x[size_t(r) * C + c] - mx);
    for (int c = 0; c < C; ++c) want_y[size_t(r) * C + c] = float(std::exp(double(scale) * x[size_t(r) * C + c] - mx) / sum);
    for (int c = 0; c < C; ++c) dot += double(y[size_t(r) * C + c]) * dy[size_t(r) * C + c];
    for (int c = 0; c < C; ++c)
      want_dx[size_t(r) * C + c] = float(scale * y[size_t(r) * C + c] * (dy[size_t(r) * C + c] - dot));
  }
  expect_close(y, want_y, 1.0 / 128, 1e-7, "softmax y");
  expect_close(d.bf16(dxa, x.size()), want_dx, 1.0 / 128, 1e-5, "softmax dx");
}

TEST(HlsIsa, CrossEntropyMatchesTheHostLoss) {
  const int R = 17, C = 10;
  auto z = rnd(size_t(R) * C, 91, 3.0f);
  z[3] = z[4];   // a tie for the maximum somewhere
  std::vector<int> labels(R);
  std::vector<uint32_t> lab32(R);
  for (int i = 0; i < R; ++i) lab32[i] = uint32_t(labels[i] = (i * 7) % C);
  Tensor dz;
  int correct = 0;
  const float loss = softmax_cross_entropy(Tensor::from_f32({R, C}, z), labels, &dz, &correct);
  Dram d;
  const uint32_t za = d.put_bf16(0, z), la = d.put_u32(0, lab32), da = d.alloc(1, z.size()), oa = d.alloc(1, 4);
  namespace X = isa::f_V_XENT;
  const St st = d.run({mk(isa::OP_V_XENT, 1, {{X::logits, za}, {X::labels, la}, {X::dlogits, da}, {X::out, oa}, {X::rows, uint32_t(R)}, {X::classes, uint32_t(C)}})});
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  EXPECT_EQ(d.f32(oa, 1)[0], loss);
  EXPECT_EQ(int(d.u32(oa, 1)), correct);
  const bf16* want = dz.bf16_data();
  for (int i = 0; i < R * C; ++i) EXPECT_EQ(d.at(da)[i], want[i].bits) << i;
  // A label outside [0, classes) is reported, not read past.
  lab32[5] = C;
  const uint32_t bad_labels = d.put_u32(0, lab32);
  const St bad = d.run({mk(isa::OP_V_XENT, 0, {{X::logits, za}, {X::labels, bad_labels}, {X::dlogits, da}, {X::out, oa}, {X::rows, uint32_t(R)}, {X::classes, uint32_t(C)}})});
  EXPECT_EQ(bad[0], isa::STATUS_BAD_FIELD);
  EXPECT_NE(isa::status_message(bad).find("label of row 5"), std::string::npos) << isa::status_message(bad);
}

TEST(HlsIsa, Permute) {
  const int O = 3, R = 5, C = 7;
  const auto x = rnd(size_t(O) * R * C, 95);
  Dram d;
  const uint32_t xa = d.put_bf16(0, x), ya = d.alloc(1, x.size());
  namespace P = isa::f_V_PERMUTE;
  const St st = d.run({mk(isa::OP_V_PERMUTE, 0, {{P::x, xa}, {P::y, ya}, {P::outer, O}, {P::rows, R}, {P::cols, C}})});
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  const auto y = d.bf16(ya, x.size());
  for (int o = 0; o < O; ++o)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) EXPECT_EQ(y[(size_t(o) * C + c) * R + r], x[(size_t(o) * R + r) * C + c]);
}

// ---- Update and pre-generation ---------------------------------------------------------------------

TEST(HlsIsa, SgdMomentumDecaySrSte) {
  const int cout = 8, k = 32;
  const int count = cout * k;
  for (uint8_t flags : {uint8_t{0}, uint8_t{1}, uint8_t{2}, uint8_t{3}}) {
    for (NM nm : {NM{2, 8}, NM{1, 4}, NM{4, 16}}) {
      if (!(flags & 2) && nm.m != 8) continue;
      auto w = rnd(count, 101), v = rnd(count, 102, 0.1f), g = rnd(count, 103, 0.5f);
      for (int i = 0; i < count; ++i) {   // FP32 masters, not BF16 values
        w[i] *= 1.0001f;
        g[i] *= 0.9999f;
      }
      const float hyper[4] = {0.05f, 0.9f, 5e-4f, 2e-4f};
      const NMCompressed c = nm_compress(w.data(), cout, k, nm, Axis::K);
      const auto mask = nm_mask_of(c);
      Dram d;
      const uint32_t wa = d.put_f32(0, w), va = d.put_f32(1, v), ga = d.put_f32(2, g);
      const uint32_t ha = d.put_f32(3, {hyper[0], hyper[1], hyper[2], hyper[3]});
      const uint32_t ia = d.put_bytes(3, nm_pack_indices(c.index));
      namespace S = isa::f_SGD;
      const St st = d.run({mk(isa::OP_SGD, flags, {{S::w, wa}, {S::v, va}, {S::g, ga}, {S::count, uint32_t(count)}, {S::hyper, ha}, {S::idx_addr, ia}, {S::n, uint32_t(nm.n)}, {S::m, uint32_t(nm.m)}, {S::k, uint32_t(k)}})});
      ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
      EXPECT_EQ(st[3], 0u);
      const auto gw = d.f32(wa, count), gv = d.f32(va, count);
      for (int i = 0; i < count; ++i) {
        // The documented rule (docs/isa.md, sat/sgd_rule.hpp), each step one fused multiply-add,
        // spelled out here independently of the shared header.
        const float wd = (flags & 1) ? hyper[2] : 0.0f;
        float gi = std::fma(wd, w[i], g[i]);
        if ((flags & 2) && !mask[i]) gi = std::fma(hyper[3], w[i], gi);
        const float vi = std::fma(hyper[1], v[i], gi);
        ASSERT_EQ(gv[i], vi) << int(flags) << " " << nm.str() << " v[" << i << "]";
        ASSERT_EQ(gw[i], std::fma(-hyper[0], vi, w[i])) << int(flags) << " " << nm.str() << " w[" << i << "]";
      }
    }
  }
  // Non-finite results are counted into status word 3.
  Dram d;
  const uint32_t wa = d.put_f32(0, {1.0f, 2.0f, 3e38f}), va = d.put_f32(0, {0, 0, 0}), ga = d.put_f32(0, {0, INFINITY, -3e38f});
  const uint32_t ha = d.put_f32(0, {10.0f, 0.0f, 0.0f, 0.0f});
  namespace S = isa::f_SGD;
  const St st = d.run({mk(isa::OP_SGD, 0, {{S::w, wa}, {S::v, va}, {S::g, ga}, {S::count, 3}, {S::hyper, ha}})});
  EXPECT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  EXPECT_EQ(st[3], 2u);
  EXPECT_NE(isa::status_message(st).find("2 non-finite"), std::string::npos) << isa::status_message(st);
}

TEST(HlsIsa, PregenerationEqualsHostCompression) {
  const int cout = 32, k = 48;
  for (int m : arch::kSupportedM) {
    for (int n = 1; n <= m; n += (m > 4 ? 3 : 1)) {
      for (Axis axis : {Axis::K, Axis::Cout}) {
        std::vector<float> w(size_t(cout) * k);
        std::mt19937 rng(200 + m * 31 + n);
        std::normal_distribution<float> dist;
        for (auto& x : w) x = dist(rng);
        for (size_t i = 0; i < w.size(); i += 5) w[i] = w[i + 1 < w.size() ? i + 1 : i];   // ties
        for (size_t i = 3; i < w.size(); i += 11) w[i] = -w[i - 1];                      // |ties|
        const NMCompressed c = nm_compress(w.data(), cout, k, NM{n, m}, axis);
        const auto want_vals = nm_values_bf16(c);
        const auto want_idx = nm_pack_indices(c.index);
        const auto pruned = nm_prune(w.data(), cout, k, NM{n, m}, axis);
        Dram d;
        const uint32_t wa = d.put_f32(0, w), va = d.alloc(1, want_vals.size()), ia = d.alloc(2, want_idx.size());
        const uint32_t da = d.alloc(3, w.size());
        namespace P = isa::f_PGEN;
        const uint8_t fl = static_cast<uint8_t>((axis == Axis::Cout ? 1 : 0) | 2 | 4);
        const St st = d.run({mk(isa::OP_PGEN, fl, {{P::w, wa}, {P::val_addr, va}, {P::idx_addr, ia}, {P::dense_addr, da}, {P::cout, uint32_t(cout)}, {P::k, uint32_t(k)}, {P::n, uint32_t(n)}, {P::m, uint32_t(m)}})});
        ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
        const std::string what = std::to_string(n) + ":" + std::to_string(m) + " along " + axis_name(axis);
        for (size_t e = 0; e < want_vals.size(); ++e) ASSERT_EQ(d.at(va)[e], want_vals[e].bits) << what << " value " << e;
        for (size_t b = 0; b < want_idx.size(); ++b)
          ASSERT_EQ((d.at(ia)[b / 2] >> (8 * (b % 2))) & 0xff, want_idx[b]) << what << " index byte " << b;
        for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(d.at(da)[i], f32_to_bf16_bits(pruned[i])) << what << " dense " << i;
      }
    }
  }
  // n == m without compression: a plain BF16 copy, any m.
  Dram d;
  const auto w = rnd(30, 7);
  const uint32_t wa = d.put_f32(0, w), da = d.alloc(1, 30);
  namespace P = isa::f_PGEN;
  const St st = d.run({mk(isa::OP_PGEN, 4, {{P::w, wa}, {P::dense_addr, da}, {P::cout, 5}, {P::k, 6}, {P::n, 3}, {P::m, 3}})});
  ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(d.at(da)[i], f32_to_bf16_bits(w[i]));
}

// PGEN b4: W_F and W_B from one read of the master equal the host's compression along K and along
// Cout, bit for bit, for every supported M (the W_B index halfwords of neighbouring blocks
// are shared, and the last one is partly used for odd n); b4 without b1 is refused.
TEST(HlsIsa, PregenerationOfBothFormsInOnePass) {
  const int cout = 48, k = 32;
  for (int m : arch::kSupportedM) {
    for (int n = 1; n <= m; n += (m > 4 ? 3 : 1)) {
      std::vector<float> w(size_t(cout) * k);
      std::mt19937 rng(900 + m * 17 + n);
      std::normal_distribution<float> dist;
      for (auto& x : w) x = dist(rng);
      for (size_t i = 0; i < w.size(); i += 7) w[i] = w[i + 1 < w.size() ? i + 1 : i];   // ties
      Dram d;
      const uint32_t wa = d.put_f32(0, w);
      const NMCompressed cf = nm_compress(w.data(), cout, k, NM{n, m}, Axis::K);
      const NMCompressed cb = nm_compress(w.data(), cout, k, NM{n, m}, Axis::Cout);
      const auto fv = nm_values_bf16(cf), bv = nm_values_bf16(cb);
      const auto fi = nm_pack_indices(cf.index), bi = nm_pack_indices(cb.index);
      const uint32_t fva = d.alloc(1, fv.size()), fia = d.alloc(2, fi.size()), bva = d.alloc(1, bv.size());
      const uint32_t bia = d.alloc(3, bi.size() + 2);
      for (size_t i = 0; i < bi.size() / 2 + 1; ++i) d.at(bia)[i] = 0xffff;   // stale nibbles to overwrite
      namespace P = isa::f_PGEN;
      const St st = d.run({mk(isa::OP_PGEN, 2 | 16,
                              {{P::w, wa}, {P::val_addr, fva}, {P::idx_addr, fia}, {P::cout, uint32_t(cout)},
                               {P::k, uint32_t(k)}, {P::n, uint32_t(n)}, {P::m, uint32_t(m)}, {P::val_b_addr, bva},
                               {P::idx_b_addr, bia}})});
      ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
      const std::string what = std::to_string(n) + ":" + std::to_string(m);
      for (size_t e = 0; e < fv.size(); ++e) ASSERT_EQ(d.at(fva)[e], fv[e].bits) << what << " W_F value " << e;
      for (size_t e = 0; e < bv.size(); ++e) ASSERT_EQ(d.at(bva)[e], bv[e].bits) << what << " W_B value " << e;
      for (size_t b = 0; b < fi.size(); ++b)
        ASSERT_EQ((d.at(fia)[b / 2] >> (8 * (b % 2))) & 0xff, fi[b]) << what << " W_F index byte " << b;
      for (size_t b = 0; b < bi.size(); ++b)
        ASSERT_EQ((d.at(bia)[b / 2] >> (8 * (b % 2))) & 0xff, bi[b]) << what << " W_B index byte " << b;
    }
  }
  Dram d;
  const uint32_t wa = d.put_f32(0, rnd(64, 3));
  namespace P = isa::f_PGEN;
  const St st = d.run({mk(isa::OP_PGEN, 16, {{P::w, wa}, {P::cout, 8}, {P::k, 8}, {P::n, 2}, {P::m, 8}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD) << isa::status_message(st);
}

// LD_SPW b0 (selection on the fly from the FP32 master) fills the B bank exactly as PGEN followed by
// a plain LD_SPW of the form: observed through a sparse GEMM with an identity A (C[i][j] = the
// decompressed B[j][i], each a single exact product), stored FP32, compared bit for bit; a tile at
// an offset (l0, g0) and the whole matrix, both axes, every n of M in {4, 8, 16}.
TEST(HlsIsa, LoadSparseOnTheFlyEqualsPregeneratedForm) {
  const int cout = 48, k = 64;
  for (int m : {4, 8, 16}) {
    for (int n = 1; n <= m; n += (m > 4 ? 3 : 1)) {
      for (Axis axis : {Axis::K, Axis::Cout}) {
        const bool along_cout = axis == Axis::Cout;
        std::vector<float> w(size_t(cout) * k);
        std::mt19937 rng(900 + m * 17 + n);
        std::normal_distribution<float> dist;
        for (auto& x : w) x = dist(rng);
        for (size_t i = 0; i < w.size(); i += 7) w[i] = w[i + 1 < w.size() ? i + 1 : i];    // ties
        for (size_t i = 5; i < w.size(); i += 13) w[i] = -w[i - 1];                       // |ties|
        w[9] = 1e-40f;                                                                      // FTZ
        const int lines = along_cout ? k : cout, len = along_cout ? cout : k;
        const int line_groups = len / m;
        const uint64_t entries = uint64_t(cout) * k / m * n;
        Dram d;
        const uint32_t wa = d.put_f32(0, w), va = d.alloc(1, entries), ia = d.alloc(2, (entries + 3) / 4);
        namespace P = isa::f_PGEN;
        namespace f = isa::f_LD_SPW;
        const uint8_t pfl = static_cast<uint8_t>((along_cout ? 1 : 0) | 2);
        const St pst = d.run({mk(isa::OP_PGEN, pfl, {{P::w, wa}, {P::val_addr, va}, {P::idx_addr, ia}, {P::cout, uint32_t(cout)}, {P::k, uint32_t(k)}, {P::n, uint32_t(n)}, {P::m, uint32_t(m)}})});
        ASSERT_EQ(pst[0], isa::STATUS_OK) << isa::status_message(pst);
        struct Tile {
          int l0, rows, g0, groups;
        };
        for (const Tile t : {Tile{3, 11, 1, line_groups - 2}, Tile{0, lines, 0, line_groups}}) {
          const int kt = t.groups * m;
          std::vector<float> eye(size_t(kt) * kt, 0.0f);
          for (int i = 0; i < kt; ++i) eye[size_t(i) * kt + i] = 1.0f;
          const uint32_t aa = d.put_bf16(3, eye);
          std::vector<uint32_t> c_addr;
          for (bool on_the_fly : {false, true}) {
            const uint32_t ca = d.alloc(3, 2 * size_t(kt) * t.rows);
            c_addr.push_back(ca);
            const uint8_t lfl = static_cast<uint8_t>(on_the_fly ? (1 | (along_cout ? 2 : 0)) : 0);
            namespace g = isa::f_GEMM;
            namespace o = isa::f_ST_2D;
            const St st = d.run({
                mk(isa::OP_LD_2D, 0, {{isa::f_LD_2D::bank, 1}, {isa::f_LD_2D::rows, uint32_t(kt)}, {isa::f_LD_2D::cols, uint32_t(kt)}, {isa::f_LD_2D::addr, aa}, {isa::f_LD_2D::row_stride, uint32_t(kt)}, {isa::f_LD_2D::col_stride, 1}}),
                mk(isa::OP_LD_SPW, lfl,
                   {{f::bank, 1}, {f::rows, uint32_t(t.rows)}, {f::groups, uint32_t(t.groups)}, {f::n, uint32_t(n)}, {f::m, uint32_t(m)},
                    {f::val_addr, on_the_fly ? wa : va}, {f::idx_addr, on_the_fly ? uint32_t(k) : ia},
                    {f::line_groups, uint32_t(line_groups)}, {f::l0, uint32_t(t.l0)}, {f::g0, uint32_t(t.g0)}},
                   0, kGemm),
                mk(isa::OP_GEMM, 2, {{g::a_bank, 1}, {g::b_bank, 1}, {g::c_bank, 1}, {g::mt, uint32_t(kt)}, {g::nt, uint32_t(t.rows)}, {g::kt, uint32_t(kt)}, {g::n, uint32_t(n)}, {g::m, uint32_t(m)}}, kLoad, kStore),
                mk(isa::OP_ST_2D, 1, {{o::c_bank, 1}, {o::rows, uint32_t(kt)}, {o::cols, uint32_t(t.rows)}, {o::addr, ca}, {o::row_stride, uint32_t(t.rows)}, {o::col_stride, 1}}, kGemm, 0)});
            ASSERT_EQ(st[0], isa::STATUS_OK) << isa::status_message(st);
          }
          const std::string what = std::to_string(n) + ":" + std::to_string(m) + " along " + axis_name(axis) +
                                   " tile l0 " + std::to_string(t.l0);
          const auto pre = d.raw(c_addr[0], 2 * size_t(kt) * t.rows), fly = d.raw(c_addr[1], 2 * size_t(kt) * t.rows);
          ASSERT_EQ(pre, fly) << what;
          // and the bank holds the form itself: B[j][i] = the master's kept value, rounded
          int nonzero = 0;
          for (size_t i = 0; i < pre.size(); i += 2) nonzero += (pre[i] | pre[i + 1]) != 0;
          EXPECT_GT(nonzero, 0) << what;
        }
      }
    }
  }
  // The master range is checked: a tile past the row length k, and past the channel.
  Dram d;
  const uint32_t wa = d.put_f32(0, rnd(64, 3));
  namespace f = isa::f_LD_SPW;
  St st = d.run({mk(isa::OP_LD_SPW, 1, {{f::bank, 0}, {f::rows, 2}, {f::groups, 3}, {f::n, 2}, {f::m, 4}, {f::val_addr, wa}, {f::idx_addr, 8}, {f::line_groups, 3}, {f::l0, 0}, {f::g0, 0}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  EXPECT_EQ(st[5], uint32_t(f::groups));
  st = d.run({mk(isa::OP_LD_SPW, 3, {{f::bank, 0}, {f::rows, 9}, {f::groups, 1}, {f::n, 2}, {f::m, 4}, {f::val_addr, wa}, {f::idx_addr, 8}, {f::line_groups, 2}, {f::l0, 0}, {f::g0, 0}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  EXPECT_EQ(st[5], uint32_t(f::rows));
  const uint32_t end = isa::make_addr(0, uint32_t(d.ch[0].size() - 8));
  st = d.run({mk(isa::OP_LD_SPW, 1, {{f::bank, 0}, {f::rows, 1}, {f::groups, 2}, {f::n, 2}, {f::m, 4}, {f::val_addr, end}, {f::idx_addr, 8}, {f::line_groups, 2}, {f::l0, 0}, {f::g0, 0}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_ADDRESS);
  st = d.run({mk(isa::OP_LD_SPW, 2, {{f::bank, 0}, {f::rows, 1}, {f::groups, 1}, {f::n, 2}, {f::m, 4}, {f::val_addr, wa}, {f::idx_addr, 8}, {f::line_groups, 2}, {f::l0, 0}, {f::g0, 0}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);   // b1 without b0
}

// ---- Tokens and malformed streams -----------------------------------------------------------------

TEST(HlsIsa, TokensOrderUnitsAndFullQueuesStall) {
  // 150 vector instructions (more than an instruction queue holds) each waiting on a token the
  // update unit signals: fetch stalls on the full VEC queue while UPD runs ahead... but UPD's
  // instructions come after them in the stream, so this is a real deadlock the watchdog reports.
  Dram d;
  const uint32_t y = d.alloc(0, 8);
  namespace F = isa::f_V_FILL;
  std::vector<isa::Insn> s;
  for (int i = 0; i < 150; ++i) s.push_back(mk(isa::OP_V_FILL, 0, {{F::y, y}, {F::count, 1}, {F::value, fbits(1.0f)}}, kUpd));
  const St st = d.run(s);
  EXPECT_EQ(st[0], isa::STATUS_DEADLOCK) << isa::status_message(st);
  EXPECT_EQ(st[1], 0u);
  EXPECT_NE(isa::status_message(st).find("waits for a token from UPD"), std::string::npos) << isa::status_message(st);

  // The same with the signals first: 60 V_FILLs signal PGEN, 60 PGEN copies wait; order holds.
  Dram e;
  const uint32_t w = e.put_f32(0, {1.0f}), z = e.alloc(1, 8), cnt = e.alloc(1, 8);
  std::vector<isa::Insn> t;
  namespace P = isa::f_PGEN;
  for (int i = 0; i < 60; ++i) {
    t.push_back(mk(isa::OP_V_FILL, 1, {{F::y, w}, {F::count, 1}, {F::value, fbits(float(i))}}, i ? kPgen : 0, kPgen));
    t.push_back(mk(isa::OP_PGEN, 4, {{P::w, w}, {P::dense_addr, z + uint32_t(i % 4)}, {P::cout, 1}, {P::k, 1}, {P::n, 1}, {P::m, 1}}, kVec, i < 59 ? kVec : 0));
  }
  t.push_back(mk(isa::OP_V_FILL, 0, {{F::y, cnt}, {F::count, 1}, {F::value, fbits(7.0f)}}));
  const St ok = e.run(t);
  EXPECT_OK(ok);
  EXPECT_EQ(ok[2], 121u);
  EXPECT_EQ(e.bf16(z, 4), (std::vector<float>{56, 57, 58, 59}));
}

TEST(HlsIsa, MalformedStreamsEndWithAClearStatus) {
  Dram d(4096);
  namespace F = isa::f_V_FILL;
  namespace G = isa::f_GEMM;
  const isa::Insn fill = mk(isa::OP_V_FILL, 0, {{F::y, 0}, {F::count, 4}, {F::value, fbits(1.0f)}});
  auto msg = [](const St& st) { return isa::status_message(st); };
  auto has = [&](const St& st, const std::string& part) {
    EXPECT_NE(msg(st).find(part), std::string::npos) << "'" << part << "' not in: " << msg(st);
  };

  // Bad opcode.
  isa::Insn bad = fill;
  bad.w[0] = (bad.w[0] & ~0xffu) | 0x5au;
  St st = d.run({fill, fill, bad, fill});
  EXPECT_EQ(st[0], isa::STATUS_BAD_OPCODE);
  EXPECT_EQ(st[1], 2u);
  has(st, "bad opcode 0x5a at instruction 2");

  // Out-of-range address: past the end of a channel, and a channel with no buffer.
  st = d.run({fill, mk(isa::OP_V_FILL, 1, {{F::y, isa::make_addr(1, 4000)}, {F::count, 100}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_ADDRESS);
  EXPECT_EQ(st[1], 1u);
  has(st, "out-of-range DRAM address at instruction 1 (V_FILL on unit VEC)");
  has(st, "field 'y'");
  has(st, "channel 1");
  {
    uint16_t* ddr[arch::kDdrChannels] = {d.ch[0].data(), nullptr, nullptr, nullptr};
    const uint64_t sizes[arch::kDdrChannels] = {d.ch[0].size(), 0, 0, 0};
    const isa::Insn s2[] = {mk(isa::OP_V_FILL, 0, {{F::y, isa::make_addr(3, 0)}, {F::count, 1}}), isa::make_insn(isa::OP_FINISH)};
    const St st2 = hls::run_kernel(s2, 2, ddr, sizes);
    EXPECT_EQ(st2[0], isa::STATUS_BAD_ADDRESS) << msg(st2);
  }

  // Missing FINISH (also for an empty stream).
  st = d.run({fill, fill}, false);
  EXPECT_EQ(st[0], isa::STATUS_NO_FINISH);
  EXPECT_EQ(st[2], 2u);
  has(st, "missing FINISH");
  st = d.run({}, false);
  EXPECT_EQ(st[0], isa::STATUS_NO_FINISH);

  // Token deadlock: a wait on a token that is never signalled.
  isa::Insn waits = fill;
  isa::set_wait(waits, kLoad);
  st = d.run({fill, waits, fill});
  EXPECT_EQ(st[0], isa::STATUS_DEADLOCK);
  EXPECT_EQ(st[1], 1u);
  has(st, "token deadlock at instruction 1 (V_FILL on unit VEC)");
  has(st, "waits for a token from LOAD");

  // A full token FIFO whose tokens are never consumed blocks its producer.
  std::vector<isa::Insn> flood(arch::kTokenDepth + 1, fill);
  for (auto& in : flood) isa::set_signal(in, kStore);
  st = d.run(flood);
  EXPECT_EQ(st[0], isa::STATUS_DEADLOCK) << msg(st);
  EXPECT_EQ(st[1], uint32_t(arch::kTokenDepth));
  has(st, "token FIFO to STORE is full");

  // Bad fields: a tile larger than a buffer, unsupported M, n > m, a bank that does not exist,
  // a mask bit for a unit without token queues, FINISH with masks.
  st = d.run({mk(isa::OP_GEMM, 0, {{G::mt, 16}, {G::nt, 16}, {G::kt, arch::kMaxTileK + 8}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  has(st, "bad field at instruction 0 (GEMM on unit GEMM): field 'kt' (word 6) = 520 is out of range");
  st = d.run({mk(isa::OP_GEMM, 2, {{G::mt, 16}, {G::nt, 16}, {G::kt, 48}, {G::n, 2}, {G::m, 6}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  has(st, "field 'm'");
  st = d.run({mk(isa::OP_GEMM, 2, {{G::mt, 16}, {G::nt, 16}, {G::kt, 48}, {G::n, 5}, {G::m, 4}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  has(st, "field 'n'");
  st = d.run({mk(isa::OP_LD_2D, 0, {{isa::f_LD_2D::bank, 2}, {isa::f_LD_2D::rows, 1}, {isa::f_LD_2D::cols, 1}})});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  has(st, "field 'bank'");
  isa::Insn ctrl_mask = fill;
  isa::set_signal(ctrl_mask, bit(isa::UNIT_CTRL));
  st = d.run({ctrl_mask});
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  has(st, "units without token queues");
  isa::Insn fin = isa::make_insn(isa::OP_FINISH);
  isa::set_wait(fin, kVec);
  st = d.run({fill, fin}, false);
  EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD);
  has(st, "FINISH must not wait or signal");
  // An in-group index >= m in a compressed operand.
  {
    Dram e(4096);
    namespace S = isa::f_LD_SPW;
    const uint32_t va = e.alloc(0, 16), ia = e.put_bytes(0, {0x10, 0x32, 0x07, 0x00});   // entry 4 = 7 >= m = 4
    st = e.run({mk(isa::OP_LD_SPW, 0, {{S::rows, 2}, {S::groups, 1}, {S::n, 2}, {S::m, 4}, {S::val_addr, va}, {S::idx_addr, ia}, {S::line_groups, 1}, {S::l0, 1}, {S::g0, 0}})});
    // Lines 1..2 hold entries 2..5 = 2, 3, 7, 0: entry 4 does not fit m = 4.
    EXPECT_EQ(st[0], isa::STATUS_BAD_FIELD) << msg(st);
    has(st, "in-group index of entry 4 is not below m");
  }

  // Unbalanced tokens: a signal nobody waits for.
  isa::Insn sig = fill;
  isa::set_signal(sig, kGemm);
  st = d.run({fill, sig, fill});
  EXPECT_EQ(st[0], isa::STATUS_TOKEN_LEFT);
  EXPECT_EQ(st[1], 3u);
  has(st, "unbalanced tokens at FINISH");
  has(st, "1 token(s) left in the queue VEC -> GEMM");

  // A clean run after all of these: the kernel keeps no state from a failed run that matters.
  st = d.run({fill});
  EXPECT_OK(st);
  has(st, "ok: 1 instructions executed");
}
