// The RTL PE (rtl/sat_pe.sv, Verilated) against the HLS C-model bit for bit. The reference is the
// kernel itself: each batch is a program LD_2D A, LD_2D B, GEMM, ST_2D (FP32) and a second GEMM with
// flag b0 (accumulate) on the first one's C bank, run by sat::hls::run_kernel on fake DRAM. Every
// output C[i][j] of a tile is one PE computation: the PE gets the entries (A[i][e], B[j][e]) in the
// contract's order (entry e to lane e mod 8, one step of 8 entries per cycle, lanes past E invalid),
// with accumulate off for the first GEMM and on, C = the first GEMM's output, for the second.
//
// The operands cover normal values, random bit patterns (every exponent), zeros of both signs, BF16
// subnormals, infinities, NaNs (quiet and signalling payloads), products that cancel, overflow and
// underflow, K not a multiple of 8. The kernel's default GEMM path (the C-simulation fast path) is
// the reference bit for bit, NaNs included (both write every NaN result as the canonical NaN,
// docs/rtl.md); some batches are also run on the kernel's cycle-structured reference path, likewise.
//
// Exit status 0 when every output matches; prints the number of vectors per mode.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "Vsat_bf16_mul.h"
#include "Vsat_fp32_add.h"
#include "Vsat_pe.h"
#include "rtl_harness.hpp"
#include "sat/arch/bf16_bits.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat_hls/kernel.hpp"
#include "verilated.h"

#if defined(__SSE__) || defined(__x86_64__)
#include <immintrin.h>
#define SAT_PE_TEST_X86 1
#endif

using namespace sat;
using namespace sat::rtl_test;

namespace {

constexpr int kLanes = arch::kPeLanes;
static_assert(kLanes == 8, "the PE's reduction tree is written for 8 lanes");

// ---- the C-model: one batch = two GEMMs on one tile -------------------------------------------------

struct Batch {
  uint32_t mt = 0, nt = 0, kt1 = 0, kt2 = 0;
  std::vector<uint16_t> a1, b1, a2, b2;  // A [mt][kt], B [nt][kt], BF16 bits
  std::vector<uint32_t> c1, c2;          // [mt][nt] FP32 bits: c1 = A1 B1^T, c2 = c1 + A2 B2^T
};

// Runs the batch's program on the C-simulated kernel; fills c1 and c2. False on a kernel error.
bool run_c_model(Batch& b) {
  constexpr uint8_t kLoad = 1u << isa::UNIT_LOAD, kGemm = 1u << isa::UNIT_GEMM, kStore = 1u << isa::UNIT_STORE;
  static Dram dram;
  dram.reset(b.a1.size() + b.b1.size() + b.a2.size() + b.b2.size() + 4 * size_t(b.mt) * b.nt + 64);
  const uint32_t a1 = dram.put(b.a1), b1 = dram.put(b.b1), a2 = dram.put(b.a2), b2 = dram.put(b.b2);
  const uint64_t o1 = dram.alloc(2 * b.mt * b.nt), o2 = dram.alloc(2 * b.mt * b.nt);
  namespace L = isa::f_LD_2D;
  namespace G = isa::f_GEMM;
  namespace S = isa::f_ST_2D;
  auto ld = [&](uint8_t is_b, uint32_t bank, uint32_t rows, uint32_t cols, uint32_t addr, uint8_t signal) {
    return mk(isa::OP_LD_2D, is_b,
              {{L::bank, bank}, {L::rows, rows}, {L::cols, cols}, {L::addr, addr}, {L::row_stride, cols},
               {L::col_stride, 1}},
              0, signal);
  };
  auto gemm = [&](uint8_t accumulate, uint32_t bank, uint32_t kt, uint8_t wait) {
    return mk(isa::OP_GEMM, accumulate,
              {{G::a_bank, bank}, {G::b_bank, bank}, {G::c_bank, 0}, {G::mt, b.mt}, {G::nt, b.nt}, {G::kt, kt},
               {G::n, 1}, {G::m, 1}},
              wait, kStore);
  };
  auto st = [&](uint64_t off, uint8_t signal) {
    return mk(isa::OP_ST_2D, 1,  // b0: FP32
              {{S::c_bank, 0}, {S::rows, b.mt}, {S::cols, b.nt}, {S::addr, isa::make_addr(0, uint32_t(off))},
               {S::row_stride, b.nt}, {S::col_stride, 1}},
              kGemm, signal);
  };
  // Operands of the second GEMM go to bank 1; it accumulates into C bank 0 once the store of the
  // first result has read it.
  const std::vector<isa::Insn> prog = {ld(0, 0, b.mt, b.kt1, a1, 0),      ld(1, 0, b.nt, b.kt1, b1, kGemm),
                                       gemm(0, 0, b.kt1, kLoad),          st(o1, kGemm),
                                       ld(0, 1, b.mt, b.kt2, a2, 0),      ld(1, 1, b.nt, b.kt2, b2, kGemm),
                                       gemm(1, 1, b.kt2, kLoad | kStore), st(o2, 0),
                                       isa::make_insn(isa::OP_FINISH)};
  if (!dram.run(prog)) return false;
  const size_t outs = size_t(b.mt) * b.nt;
  b.c1.resize(outs);
  b.c2.resize(outs);
  for (size_t i = 0; i < outs; ++i) {
    b.c1[i] = dram.f32_at(o1 + 2 * i);
    b.c2[i] = dram.f32_at(o2 + 2 * i);
  }
  return true;
}

// ---- the RTL PE ------------------------------------------------------------------------------------

struct Job {
  const uint16_t* a;  // A row, kt entries
  const uint16_t* b;  // B line, kt entries
  uint32_t kt;
  bool accumulate;
  uint32_t c;    // C input with accumulate
  uint32_t* out;
};

class Pe {
 public:
  Pe() {
    dut_.clk = 0;
    dut_.rst = 1;
    tick();
    dut_.rst = 0;
  }
  uint64_t cycles() const { return cycles_; }
  // Runs the jobs back to back: a job's `finish` shares the cycle of the next one's `start` and
  // first step, so the test also covers the PE's overlap of drain and fill.
  bool run(const std::vector<Job>& jobs) {
    const Job* pending = nullptr;
    for (const Job& j : jobs) {
      const uint32_t steps = (j.kt + kLanes - 1) / kLanes;
      for (uint32_t s = 0; s < steps; ++s) {
        dut_.start = s == 0;
        dut_.step = 1;
        uint32_t valid = 0;
        for (int l = 0; l < kLanes; ++l) {
          const uint32_t e = s * kLanes + l;
          const bool v = e < j.kt;
          valid |= uint32_t{v} << l;
          put16(dut_.act, l, v ? j.a[e] : 0x5555);  // an invalid slot's operands must not matter
          put16(dut_.wgt, l, v ? j.b[e] : 0x7f81);
        }
        dut_.lane_valid = valid;
        const bool drain = s == 0 && pending;
        dut_.finish = drain;
        dut_.accumulate = drain && pending->accumulate;
        dut_.c_in = drain ? pending->c : 0;
        tick();
        if (drain && !collect(*pending)) return false;
      }
      pending = &j;
    }
    if (pending) {
      dut_.start = dut_.step = 0;
      dut_.finish = 1;
      dut_.accumulate = pending->accumulate;
      dut_.c_in = pending->c;
      tick();
      dut_.finish = 0;
      if (!collect(*pending)) return false;
    }
    return true;
  }

 private:
  void tick() {
    dut_.clk = 0;
    dut_.eval();
    dut_.clk = 1;
    dut_.eval();
    ++cycles_;
  }
  bool collect(const Job& j) {
    if (!dut_.out_valid) {
      std::printf("FAIL: out_valid low after finish\n");
      return false;
    }
    *j.out = dut_.out;
    return true;
  }
  Vsat_pe dut_;
  uint64_t cycles_ = 0;
};

// ---- operands --------------------------------------------------------------------------------------

// Flavour, kFlavourName and Gen (the BF16 operand generator) are rtl_harness.hpp's.

// K of a tile: short, whole steps of 8, mid-length or up to a whole tile (kMaxTileK).
uint32_t pick_kt(Gen& g) {
  const uint32_t r = g.u(10);
  if (r == 0) return 8 * (1 + g.u(8));  // whole steps: no lane adds +0 at the end
  if (r < 3) return 1 + g.u(16);
  if (r < 9) return 17 + g.u(48);
  return 65 + g.u(arch::kMaxTileK - 64);
}

// Operands of one GEMM: A [mt][kt], B [nt][kt]. The cancel flavour copies an earlier A column into
// a later one and negates the B column, so products cancel within a lane (e and e - 8) and across
// neighbouring lanes (the reduction tree).
void fill(Gen& g, Flavour f, uint32_t mt, uint32_t nt, uint32_t kt, std::vector<uint16_t>& a,
          std::vector<uint16_t>& b) {
  a.resize(size_t(mt) * kt);
  b.resize(size_t(nt) * kt);
  const Flavour row_f = f == kCancel ? static_cast<Flavour>(g.u(kMixed)) : f;
  for (auto& x : a) x = g.element(row_f == kCancel ? kNormal : row_f);
  for (auto& x : b) x = g.element(row_f == kCancel ? kNormal : row_f);
  if (f != kCancel) return;
  for (uint32_t k = 1; k < kt; ++k) {
    const uint32_t r = g.u(4);
    if (r == 0) continue;
    const uint32_t src = (r == 1 && k >= 8) ? k - 8 : k - 1;
    for (uint32_t i = 0; i < mt; ++i) a[size_t(i) * kt + k] = a[size_t(i) * kt + src];
    for (uint32_t j = 0; j < nt; ++j) b[size_t(j) * kt + k] = static_cast<uint16_t>(b[size_t(j) * kt + src] ^ 0x8000);
  }
}


// ---- the FP32 adder and the BF16 multiplier alone, against the x86 instructions -------------------

float from_bits(uint32_t u) { return f32_from_bits(u); }

#ifdef SAT_PE_TEST_X86
// _mm_add_ss(a, b) keeps a as the first source operand (the upper lanes come from it), so this is
// x86's addss/vaddss with x first: the rule the RTL's NaN priority names.
uint32_t x86_add(uint32_t x, uint32_t y, bool y_first) {
  if (y_first) std::swap(x, y);
  return f32_bits(_mm_cvtss_f32(_mm_add_ss(_mm_set_ss(from_bits(x)), _mm_set_ss(from_bits(y)))));
}
uint32_t x86_mul(uint32_t x, uint32_t y) {
  return f32_bits(_mm_cvtss_f32(_mm_mul_ss(_mm_set_ss(from_bits(x)), _mm_set_ss(from_bits(y)))));
}
#endif

// A random FP32 operand: any bit pattern, or one near `other` in exponent (rounding, cancellation),
// or a special value (zeros, subnormals, inf, NaNs, extremes).
uint32_t fp32_operand(Gen& g, uint32_t other) {
  const uint32_t r = g.u(8);
  const uint32_t sign = g.u(2) << 31;
  if (r < 2) return static_cast<uint32_t>(g.rng());
  if (r < 5) {  // exponent within 30 of the other's, often equal or adjacent
    const int span = g.u(2) ? 2 : 30;
    const int e = std::clamp(int((other >> 23) & 0xff) + int(g.u(2 * span + 1)) - span, 0, 254);
    uint32_t m = static_cast<uint32_t>(g.rng()) & 0x7fffff;
    if (g.u(4) == 0) m = (other & 0x7fffff) ^ (1u << g.u(23));   // nearly equal significands
    if (g.u(8) == 0) m = other & 0x7fffff;
    return sign | uint32_t(e) << 23 | m;
  }
  if (r < 6) return sign | (static_cast<uint32_t>(g.rng()) & (g.u(2) ? 0x7fffff : 0xff));  // subnormal
  switch (g.u(8)) {
    case 0: return sign;
    case 1: return sign | 0x7f800000u;
    case 2: return sign | 0x7fc00000u | (static_cast<uint32_t>(g.rng()) & 0x3fffff);
    case 3: return sign | 0x7f800000u | (1 + (static_cast<uint32_t>(g.rng()) & 0x3ffffe));
    case 4: return sign | 0x7f7fffffu;
    case 5: return sign | 0x00800000u;
    case 6: return sign | (0x7f000000u + (static_cast<uint32_t>(g.rng()) & 0x7fffff));
    default: return sign | (0x00800000u + (static_cast<uint32_t>(g.rng()) & 0xffffff));
  }
}

// Returns the number of mismatches; counts the pairs in *pairs.
uint64_t check_units(Gen& g, uint64_t n, uint64_t* add_pairs, uint64_t* mul_pairs) {
  uint64_t bad = 0;
#ifdef SAT_PE_TEST_X86
  Vsat_fp32_add add;
  Vsat_bf16_mul mul;
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t x = fp32_operand(g, 0x3f800000u);
    const uint32_t y = fp32_operand(g, x);
    const bool y_first = g.u(2);
    const bool swap = g.u(2);
    add.x = swap ? y : x;
    add.y = swap ? x : y;
    add.y_first = y_first;
    add.eval();
    const uint32_t want = x86_add(add.x, add.y, y_first);
    if (add.s != want && ++bad <= 10)
      std::printf("MISMATCH sat_fp32_add(%08x, %08x, y_first %d): rtl %08x, x86 %08x\n", add.x, add.y, y_first,
                  add.s, want);
  }
  *add_pairs = n;
  // Products of BF16 values: every pair of a random subset, as the kernel forms them.
  for (uint64_t i = 0; i < n; ++i) {
    const uint16_t a = g.u(4) ? static_cast<uint16_t>(g.u(65536)) : g.special();
    const uint16_t b = g.u(4) ? static_cast<uint16_t>(g.u(65536)) : g.special();
    mul.x = a;
    mul.y = b;
    mul.eval();
    const uint32_t want = x86_mul(f32_bits(bf16_bits_to_f32(a)), f32_bits(bf16_bits_to_f32(b)));
    if (mul.p != want && ++bad <= 10)
      std::printf("MISMATCH sat_bf16_mul(%04x, %04x): rtl %08x, x86 %08x\n", a, b, mul.p, want);
  }
  *mul_pairs = n;
#else
  (void)g;
  (void)n;
  *add_pairs = *mul_pairs = 0;
#endif
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr uint32_t kTile = 32;       // 32 x 32 outputs per GEMM: 1024 PE computations
  constexpr int kBatches = 100;        // 102,400 vectors per mode
  constexpr int kReferencePathEvery = 8;
  Gen g(0x5a7'0c0de);
  uint64_t add_pairs = 0, mul_pairs = 0;
  const uint64_t unit_bad = check_units(g, 2'000'000, &add_pairs, &mul_pairs);
  std::printf("sat_fp32_add vs x86 addss: %llu pairs; sat_bf16_mul vs x86 mulss of BF16 values: %llu pairs; "
              "%llu mismatches\n",
              (unsigned long long)add_pairs, (unsigned long long)mul_pairs, (unsigned long long)unit_bad);
  Pe pe;
  uint64_t vectors[2] = {0, 0}, mismatches[2] = {0, 0};
  // Output classes of the C-model's results (rtl_harness.hpp's result_class).
  uint64_t classes[kClasses] = {}, nan_by_flavour[kFlavours] = {};
  uint64_t ref_checked = 0, ref_mismatch = 0;
  int flavour_count[kFlavours] = {};
  for (int bi = 0; bi < kBatches; ++bi) {
    Batch b;
    const Flavour f = static_cast<Flavour>(bi % kFlavours);
    g.special_odds = 4u << (2 * g.u(3));
    ++flavour_count[f];
    b.mt = kTile;
    b.nt = kTile;
    b.kt1 = pick_kt(g);
    fill(g, f, b.mt, b.nt, b.kt1, b.a1, b.b1);
    // The second GEMM: its own operands, or the first's negated (C + sum cancels) or repeated
    // (C + sum doubles, may overflow).
    const uint32_t second = g.u(4);
    if (second == 0) {
      b.kt2 = b.kt1;
      b.a2 = b.a1;
      b.b2 = b.b1;
      for (auto& x : b.b2) x ^= 0x8000;
    } else if (second == 1) {
      b.kt2 = b.kt1;
      b.a2 = b.a1;
      b.b2 = b.b1;
    } else {
      b.kt2 = pick_kt(g);
      fill(g, static_cast<Flavour>(g.u(kFlavours)), b.mt, b.nt, b.kt2, b.a2, b.b2);
    }
    hls::set_reference_pe(false);
    if (!run_c_model(b)) return 1;

    const size_t outs = size_t(b.mt) * b.nt;
    std::vector<uint32_t> r1(outs), r2(outs);
    std::vector<Job> jobs;
    jobs.reserve(2 * outs);
    for (uint32_t i = 0; i < b.mt; ++i)
      for (uint32_t j = 0; j < b.nt; ++j)
        jobs.push_back({&b.a1[size_t(i) * b.kt1], &b.b1[size_t(j) * b.kt1], b.kt1, false, 0, &r1[i * b.nt + j]});
    for (uint32_t i = 0; i < b.mt; ++i)
      for (uint32_t j = 0; j < b.nt; ++j)
        jobs.push_back({&b.a2[size_t(i) * b.kt2], &b.b2[size_t(j) * b.kt2], b.kt2, true, b.c1[i * b.nt + j],
                        &r2[i * b.nt + j]});
    if (!pe.run(jobs)) return 1;

    for (int mode = 0; mode < 2; ++mode) {
      const auto& want = mode ? b.c2 : b.c1;
      const auto& got = mode ? r2 : r1;
      for (size_t o = 0; o < outs; ++o) {
        ++vectors[mode];
        const uint32_t w = want[o];
        const int cls = result_class(w);
        ++classes[cls];
        nan_by_flavour[f] += cls == kClsNan;
        if (got[o] != w && ++mismatches[mode] <= 10)
          std::printf("MISMATCH batch %d (%s, kt %u/%u) %s C[%zu][%zu]: rtl %08x, C-model %08x\n", bi,
                      kFlavourName[f], b.kt1, b.kt2, mode ? "accumulate" : "overwrite", o / b.nt, o % b.nt, got[o],
                      w);
      }
    }
    // The kernel's cycle-structured PE path (what Vitis synthesises) on the same program.
    if (bi % kReferencePathEvery == 0) {
      Batch rb = b;
      hls::set_reference_pe(true);
      if (!run_c_model(rb)) return 1;
      hls::set_reference_pe(false);
      for (int mode = 0; mode < 2; ++mode) {
        const auto& want = mode ? rb.c2 : rb.c1;
        const auto& got = mode ? r2 : r1;
        for (size_t o = 0; o < outs; ++o) {
          ++ref_checked;
          if (got[o] == want[o]) continue;
          if (++ref_mismatch <= 10) {
            std::printf("MISMATCH vs reference PE path, batch %d %s [%zu]: rtl %08x, C-model %08x\n", bi,
                        mode ? "accumulate" : "overwrite", o, got[o], want[o]);
          }
        }
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sat_pe vs HLS C-model (run_kernel, fast path), bit for bit (NaNs included):\n");
  std::printf("  dense, accumulate off: %llu vectors, %llu mismatches\n", (unsigned long long)vectors[0],
              (unsigned long long)mismatches[0]);
  std::printf("  dense, accumulate on:  %llu vectors, %llu mismatches\n", (unsigned long long)vectors[1],
              (unsigned long long)mismatches[1]);
  std::printf("  results: %llu normal, %llu subnormal, %llu +0, %llu -0, %llu inf, %llu NaN\n",
              (unsigned long long)classes[kClsNormal], (unsigned long long)classes[kClsSubnormal],
              (unsigned long long)classes[kClsPosZero], (unsigned long long)classes[kClsNegZero],
              (unsigned long long)classes[kClsInf], (unsigned long long)classes[kClsNan]);
  std::printf("  batches (NaN results) per operand flavour:");
  for (int f = 0; f < kFlavours; ++f)
    std::printf(" %s %d (%llu)", kFlavourName[f], flavour_count[f], (unsigned long long)nan_by_flavour[f]);
  std::printf("\nvs the kernel's reference PE path: %llu vectors, %llu mismatches\n", (unsigned long long)ref_checked,
              (unsigned long long)ref_mismatch);
  std::printf("%llu PE cycles, %.1f s\n", (unsigned long long)pe.cycles(), secs);
  const bool ok = unit_bad == 0 && mismatches[0] == 0 && mismatches[1] == 0 && ref_mismatch == 0 && vectors[0] >= 100000 &&
                  vectors[1] >= 100000;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
