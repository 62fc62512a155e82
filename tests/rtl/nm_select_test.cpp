// The RTL N:M selection and compression unit (rtl/sat_nm_select.sv, Verilated) against the HLS
// C-model bit for bit, in every supported setting (m in arch::kSupportedM, 1 <= n <= m; n == m keeps
// every element).
//
// 1. Groups against the kernel's own selection code: the keep mask of sat::kernel::nm_keep_mask
//    (hls/src/kernel.hpp, which PGEN and LD_SPW b0 call; it runs nm_keep_masks of
//    arch/include/sat/arch/nm_select.hpp), the kept indices of nm_indices_of and the values of
//    f32_to_bf16_bits, as PGEN writes an entry. Groups of random values, ties (equal magnitudes of
//    either sign, all equal, +0 and -0), zeros, FP32 subnormals, infinities, NaNs of several payloads,
//    extremes, values on BF16 rounding boundaries, random bit patterns; the inputs past m are random
//    and must be ignored; some cycles carry no group (the outputs must hold).
// 2. The layout: PGEN b1 (compressed) along K and along Cout, run by sat::hls::run_kernel, against
//    the unit fed the groups in PGEN's order (line l's group g: a row's m consecutive weights, or a
//    column's m consecutive weights), its entries written as the NMCompressed layout (value at
//    entry E, index in nibble E), compared halfword for halfword.
//
// Options: --vectors N (or SAT_RTL_VECTORS; default 100,000 groups per setting), --trace FILE (FST).
// Exit status 0 when everything matches.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "Vsat_nm_select.h"
#include "kernel.hpp"   // hls/src: the kernel's nm_keep_mask
#include "rtl_harness.hpp"

using namespace sat;
using namespace sat::rtl_test;

namespace {

constexpr int kMaxM = arch::kSupportedM[arch::kNumSupportedM - 1];
constexpr int kIb = arch::kIndexBits;

struct Result {
  uint32_t keep = 0;
  uint16_t val[kMaxM] = {};
  uint8_t idx[kMaxM] = {};
};

// What the kernel writes for a group (pgen_unit.cpp: nm_keep_mask, nm_indices_of, f32_to_bf16_bits).
Result c_model(const uint32_t* bits, uint32_t n, uint32_t m) {
  float v[kMaxM];
  for (uint32_t i = 0; i < m; ++i) v[i] = f32_from_bits(bits[i]);
  Result r;
  r.keep = kernel::nm_keep_mask(v, m, n);
  uint8_t kept[kMaxM];
  nm_indices_of(r.keep, static_cast<int>(n), kept);
  for (uint32_t j = 0; j < n; ++j) {
    r.idx[j] = kept[j];
    r.val[j] = f32_to_bf16_bits(v[kept[j]]);
  }
  return r;
}

class Unit {
 public:
  Unit(int argc, char** argv) : wave_(dut_, argc, argv) {
    dut_.rst = 1;
    tick();
    dut_.rst = 0;
  }
  uint64_t cycles() const { return cycles_; }
  // One group in, its result the cycle after. `pad` fills the inputs past m.
  Result select(const uint32_t* bits, uint32_t n, uint32_t m, Gen& g) {
    dut_.in_valid = 1;
    dut_.nm_n = n;
    dut_.nm_m = m;
    for (int i = 0; i < kMaxM; ++i)
      put32(dut_.v, i, i < int(m) ? bits[i] : static_cast<uint32_t>(g.rng()));
    tick();
    return read();
  }
  // A cycle without a group: the outputs must hold. True when they did.
  bool idle(const Result& last, Gen& g) {
    dut_.in_valid = 0;
    dut_.nm_n = g.u(17);
    dut_.nm_m = g.u(17);
    for (int i = 0; i < kMaxM; ++i) put32(dut_.v, i, static_cast<uint32_t>(g.rng()));
    tick();
    const Result r = read();
    return !dut_.out_valid && same(r, last);
  }
  bool out_valid() const { return dut_.out_valid; }
  static bool same(const Result& a, const Result& b) {
    return a.keep == b.keep && std::memcmp(a.val, b.val, sizeof a.val) == 0 && std::memcmp(a.idx, b.idx, sizeof a.idx) == 0;
  }

 private:
  Result read() const {
    Result r;
    r.keep = dut_.keep;
    for (int j = 0; j < kMaxM; ++j) {
      r.val[j] = static_cast<uint16_t>(get_bits(dut_.val, 16 * j, 16));
      r.idx[j] = static_cast<uint8_t>(get_bits(dut_.idx, kIb * j, kIb));
    }
    return r;
  }
  void tick() {
    dut_.clk = 0;
    dut_.eval();
    wave_.dump(t_++);
    dut_.clk = 1;
    dut_.eval();
    wave_.dump(t_++);
    ++cycles_;
  }
  Vsat_nm_select dut_;
  Wave<Vsat_nm_select> wave_;
  uint64_t t_ = 0, cycles_ = 0;
};

// ---- groups --------------------------------------------------------------------------------------

enum GroupKind { kGNormal, kGTies, kGEqual, kGZeros, kGSubnormal, kGSpecial, kGRounding, kGBits, kGMixed, kGKinds };
const char* const kGroupName[kGKinds] = {"normal",  "ties",     "equal", "zeros", "subnormal",
                                         "special", "rounding", "bits",  "mixed"};

uint32_t fp32_special(Gen& g) {
  const uint32_t s = g.u(2) << 31;
  switch (g.u(9)) {
    case 0: return s;                                                          // +-0
    case 1: return s | 0x7f800000u;                                            // +-inf
    case 2: return s | 0x7fc00000u | (static_cast<uint32_t>(g.rng()) & 0x3fffff);        // quiet NaN
    case 3: return s | 0x7f800000u | (1 + (static_cast<uint32_t>(g.rng()) % 0x3fffff));  // signalling NaN
    case 4: return s | 0x7f7fffffu;                                            // largest finite (rounds to inf)
    case 5: return s | 0x00800000u;                                            // smallest normal
    case 6: return s | (1 + (static_cast<uint32_t>(g.rng()) & 0x7ffffe));      // subnormal
    case 7: return s | 0x7fc00000u;                                            // the same NaN twice: a tie
    default: return f32_bits(std::normal_distribution<float>(0.0f, 1.0f)(g.rng));
  }
}

void make_group(Gen& g, GroupKind kind, uint32_t m, uint32_t* v) {
  const auto normal = [&] { return f32_bits(std::normal_distribution<float>(0.0f, 1.0f)(g.rng)); };
  switch (kind) {
    case kGNormal:
      for (uint32_t i = 0; i < m; ++i) v[i] = normal();
      break;
    case kGTies: {  // magnitudes from a set of 1..3, signs random: ties everywhere, +x against -x
      uint32_t mags[3];
      const uint32_t distinct = 1 + g.u(3);
      for (auto& x : mags) x = normal() & 0x7fffffffu;
      if (g.u(4) == 0) mags[0] = 0;   // +0 ties -0
      for (uint32_t i = 0; i < m; ++i) v[i] = mags[g.u(distinct)] | (g.u(2) << 31);
      break;
    }
    case kGEqual: {
      const uint32_t x = g.u(3) ? normal() : fp32_special(g);
      for (uint32_t i = 0; i < m; ++i) v[i] = x;
      break;
    }
    case kGZeros:
      for (uint32_t i = 0; i < m; ++i) v[i] = g.u(4) ? g.u(2) << 31 : normal();
      break;
    case kGSubnormal:   // rank by their bits; all flush to zeros of their sign in BF16
      for (uint32_t i = 0; i < m; ++i)
        v[i] = (g.u(2) << 31) | (g.u(4) ? static_cast<uint32_t>(g.rng()) & (g.u(2) ? 0x7fffff : 0xff) : 0);
      break;
    case kGSpecial:
      for (uint32_t i = 0; i < m; ++i) v[i] = g.u(2) ? fp32_special(g) : normal();
      break;
    case kGRounding: {  // low halves at, just below and just above one half; carries into the exponent
      static const uint32_t low[] = {0x8000, 0x7fff, 0x8001, 0xffff, 0x0000};
      for (uint32_t i = 0; i < m; ++i) {
        uint32_t x = (normal() & 0xffff0000u) | low[g.u(5)];
        if (g.u(8) == 0) x = (g.u(2) << 31) | 0x7f7f0000u | low[g.u(5)];
        if (g.u(8) == 0) x = (g.u(2) << 31) | 0x3f7f0000u | low[g.u(5)];   // rounds up to 1.0
        v[i] = x;
      }
      break;
    }
    case kGBits:
      for (uint32_t i = 0; i < m; ++i) v[i] = static_cast<uint32_t>(g.rng());
      break;
    default:
      for (uint32_t i = 0; i < m; ++i) {
        uint32_t one[1];
        make_group(g, static_cast<GroupKind>(g.u(kGMixed)), 1, one);
        v[i] = one[0];
      }
      if (m > 1 && g.u(2)) v[g.u(m)] = v[g.u(m)];   // one tie at least, now and then
  }
}

void print_result(const char* who, const Result& r, uint32_t n) {
  std::printf("    %s keep %04x:", who, r.keep);
  for (uint32_t j = 0; j < n; ++j) std::printf(" %u=%04x", r.idx[j], r.val[j]);
  std::printf("\n");
}

// ---- the layout: PGEN through the kernel ---------------------------------------------------------

// PGEN b1 of a cout x k master along K or Cout; the unit's entries packed as NMCompressed. Returns
// mismatching halfwords.
uint64_t check_pgen(Unit& unit, Gen& g, uint32_t n, uint32_t m, bool along_cout, uint32_t cout, uint32_t k,
                    uint64_t* groups_out) {
  static Dram dram;
  dram.reset(size_t{1} << 20);
  std::vector<uint32_t> w(size_t(cout) * k);
  for (size_t i = 0; i < w.size(); i += 1) {
    uint32_t one[1];
    make_group(g, static_cast<GroupKind>(g.u(kGKinds)), 1, one);
    w[i] = one[0];
  }
  // Ties across the group direction: copy neighbours now and then.
  for (size_t i = 1; i < w.size(); ++i)
    if (g.u(6) == 0) w[i] = w[i - (along_cout && i >= k ? k : 1)] ^ (g.u(2) << 31);
  const uint64_t entries = uint64_t(cout) * k / m * n;
  const uint32_t wa = dram.put_f32(w);
  const uint64_t va = dram.alloc(entries), ia = dram.alloc((entries + 3) / 4);
  namespace P = isa::f_PGEN;
  const std::vector<isa::Insn> prog = {
      mk(isa::OP_PGEN, static_cast<uint8_t>((along_cout ? 1 : 0) | 2),
         {{P::w, wa}, {P::val_addr, isa::make_addr(0, uint32_t(va))}, {P::idx_addr, isa::make_addr(0, uint32_t(ia))},
          {P::cout, cout}, {P::k, k}, {P::n, n}, {P::m, m}},
         0, 0),
      isa::make_insn(isa::OP_FINISH)};
  if (!dram.run(prog)) return 1;
  // The unit in PGEN's order: line l (a row along K, a column along Cout), group g.
  std::vector<uint16_t> vals, nibs((entries + 3) / 4, 0);
  const uint32_t lines = along_cout ? k : cout, groups = (along_cout ? cout : k) / m;
  uint32_t grp[kMaxM];
  for (uint32_t l = 0; l < lines; ++l)
    for (uint32_t gr = 0; gr < groups; ++gr) {
      for (uint32_t i = 0; i < m; ++i)
        grp[i] = along_cout ? w[size_t(gr * m + i) * k + l] : w[size_t(l) * k + gr * m + i];
      const Result r = unit.select(grp, n, m, g);
      ++*groups_out;
      for (uint32_t j = 0; j < n; ++j) {
        const size_t e = vals.size();
        vals.push_back(r.val[j]);
        nibs[e / 4] = static_cast<uint16_t>(nibs[e / 4] | r.idx[j] << (4 * (e % 4)));
      }
    }
  uint64_t bad = 0;
  for (size_t e = 0; e < entries; ++e)
    if (dram.at(va + e) != vals[e] && ++bad <= 5)
      std::printf("MISMATCH PGEN %u:%u %s value of entry %zu: rtl %04x, kernel %04x\n", n, m,
                  along_cout ? "along Cout" : "along K", e, vals[e], dram.at(va + e));
  for (size_t h = 0; h < nibs.size(); ++h)
    if (dram.at(ia + h) != nibs[h] && ++bad <= 5)
      std::printf("MISMATCH PGEN %u:%u %s index halfword %zu: rtl %04x, kernel %04x\n", n, m,
                  along_cout ? "along Cout" : "along K", h, nibs[h], dram.at(ia + h));
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t target = arg_or_env(argc, argv, "--vectors", "SAT_RTL_VECTORS", 100000);
  Gen g(0x5a7'5e1ec7);
  Unit unit(argc, argv);
  uint64_t total_bad = 0, hold_bad = 0, kinds[kGKinds] = {}, tie_groups = 0, nan_groups = 0;
  std::printf("sat_nm_select vs the kernel's nm_keep_mask / nm_indices_of / f32_to_bf16_bits, bit for bit:\n");
  for (int mi = 0; mi < arch::kNumSupportedM; ++mi) {
    const uint32_t m = arch::kSupportedM[mi];
    for (uint32_t n = 1; n <= m; ++n) {
      uint64_t bad = 0;
      for (uint64_t t = 0; t < target; ++t) {
        const GroupKind kind = static_cast<GroupKind>(t % kGKinds);
        ++kinds[kind];
        uint32_t v[kMaxM];
        make_group(g, kind, m, v);
        bool tie = false, nan = false;
        for (uint32_t i = 0; i < m; ++i) {
          nan = nan || is_nan(v[i]);
          for (uint32_t j = 0; j < i; ++j) tie = tie || (v[i] & 0x7fffffffu) == (v[j] & 0x7fffffffu);
        }
        tie_groups += tie;
        nan_groups += nan;
        const Result want = c_model(v, n, m);
        const Result got = unit.select(v, n, m, g);
        if ((!unit.out_valid() || !Unit::same(got, want)) && ++bad <= 5) {
          std::printf("MISMATCH %u:%u group %llu (%s):", n, m, (unsigned long long)t, kGroupName[kind]);
          for (uint32_t i = 0; i < m; ++i) std::printf(" %08x", v[i]);
          std::printf("\n");
          print_result("rtl   ", got, m);
          print_result("kernel", want, m);
        }
        if (g.u(32) == 0 && !unit.idle(got, g) && ++hold_bad <= 5)
          std::printf("FAIL: outputs changed in a cycle without in_valid (%u:%u)\n", n, m);
      }
      std::printf("  %2u:%-2u %llu groups, %llu mismatches\n", n, m, (unsigned long long)target,
                  (unsigned long long)bad);
      total_bad += bad;
    }
  }
  std::printf("  groups with a tie in magnitude: %llu, with a NaN: %llu; per kind:", (unsigned long long)tie_groups,
              (unsigned long long)nan_groups);
  for (int k = 0; k < kGKinds; ++k) std::printf(" %s %llu", kGroupName[k], (unsigned long long)kinds[k]);
  std::printf("\n");

  // The layout, through PGEN: every setting, both directions, shapes with several lines and groups.
  uint64_t pgen_bad = 0, pgen_runs = 0, pgen_groups = 0;
  for (int mi = 0; mi < arch::kNumSupportedM; ++mi) {
    const uint32_t m = arch::kSupportedM[mi];
    for (uint32_t n = 1; n <= m; ++n)
      for (int along_cout = 0; along_cout < 2; ++along_cout) {
        const uint32_t cout = along_cout ? m * (1 + g.u(4)) : 1 + g.u(24);
        const uint32_t k = along_cout ? 1 + g.u(24) : m * (1 + g.u(4));
        pgen_bad += check_pgen(unit, g, n, m, along_cout, cout, k, &pgen_groups);
        ++pgen_runs;
      }
  }
  std::printf("vs PGEN b1 (run_kernel), NMCompressed values and packed indices: %llu runs (K and Cout), %llu groups, "
              "%llu mismatching halfwords\n",
              (unsigned long long)pgen_runs, (unsigned long long)pgen_groups, (unsigned long long)pgen_bad);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu unit cycles, %.1f s\n", (unsigned long long)unit.cycles(), secs);
  const bool ok = total_bad == 0 && hold_bad == 0 && pgen_bad == 0;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
