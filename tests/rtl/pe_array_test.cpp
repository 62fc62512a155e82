// The RTL PE array (rtl/sat_pe_array.sv with its sat_pe instances, Verilated) against the HLS
// C-model bit for bit, in dense mode and every supported N:M setting (m in arch::kSupportedM,
// 1 <= n <= m). The reference is the kernel itself: each batch is a program that loads an A tile and
// a B tile (LD_2D dense, LD_SPW compressed values and packed indices), runs GEMM, stores C (FP32),
// then a second GEMM with flag b0 (accumulate) on the same C bank, run by sat::hls::run_kernel on
// fake DRAM. The Verilated array computes the same tile block by block (ROWS x COLS outputs at a
// time, remainders included), reading its operands as a bank reader would: each cycle the A row
// elements of the window it names (win_base) and the B entries it names (entry_base); elements
// outside the tile are random bits, which must never be selected. Some cycles stall (no step) with
// random operands. Every output must match bit for bit, NaNs included (both write the canonical NaN),
// and every block must take the step cycles arch::gemm_block_substeps charges (the simulator's
// count). Some batches are also run on the kernel's cycle-structured PE path.
//
// Options: --vectors N (or SAT_RTL_VECTORS; default 100,000 outputs per mode), --trace FILE (FST).
// Exit status 0 when every output matches.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "Vsat_pe_array.h"
#include "rtl_harness.hpp"
#include "sat/arch/timing.hpp"

using namespace sat;
using namespace sat::rtl_test;

namespace {

#if SAT_RTL_ROWS > 0
constexpr int kRows = SAT_RTL_ROWS;
#else
constexpr int kRows = arch::kPeRows;
#endif
#if SAT_RTL_COLS > 0
constexpr int kCols = SAT_RTL_COLS;
#else
constexpr int kCols = arch::kPeCols;
#endif
constexpr int kLanes = arch::kPeLanes;
constexpr int kWin = arch::kPeLanes * arch::kSelectWindowRatio;
constexpr int kIb = arch::kIndexBits;

struct Mode {
  bool sparse;
  uint32_t n, m;
  std::string name() const { return sparse ? std::to_string(n) + ":" + std::to_string(m) : "dense"; }
};

struct Operand {
  uint32_t kt = 0, entries = 0;
  std::vector<uint16_t> a;    // [mt][kt] BF16
  std::vector<uint16_t> val;  // [nt][entries] BF16: dense B[j][k], or the kept values
  std::vector<uint8_t> idx;   // [nt][entries] in-group indices (sparse)
};

struct Batch {
  Mode mode{};
  uint32_t mt = 0, nt = 0;
  Operand op[2];
  std::vector<uint32_t> c[2];  // [mt][nt] FP32 bits: c[0] = A0 B0^T, c[1] = c[0] + A1 B1^T
};

// ---- the C-model ---------------------------------------------------------------------------------

Dram g_dram;

bool run_c_model(Batch& b) {
  constexpr uint8_t kLoad = 1u << isa::UNIT_LOAD, kGemm = 1u << isa::UNIT_GEMM, kStore = 1u << isa::UNIT_STORE;
  g_dram.reset(size_t{1} << 20);
  namespace L = isa::f_LD_2D;
  namespace W = isa::f_LD_SPW;
  namespace G = isa::f_GEMM;
  namespace S = isa::f_ST_2D;
  std::vector<isa::Insn> prog;
  uint64_t out[2];
  for (int gi = 0; gi < 2; ++gi) {
    const Operand& o = b.op[gi];
    const uint32_t bank = static_cast<uint32_t>(gi);
    const uint32_t a = g_dram.put(o.a);
    prog.push_back(mk(isa::OP_LD_2D, 0,
                      {{L::bank, bank}, {L::rows, b.mt}, {L::cols, o.kt}, {L::addr, a}, {L::row_stride, o.kt},
                       {L::col_stride, 1}},
                      0, 0));
    if (!b.mode.sparse) {
      const uint32_t w = g_dram.put(o.val);
      prog.push_back(mk(isa::OP_LD_2D, 1,
                        {{L::bank, bank}, {L::rows, b.nt}, {L::cols, o.kt}, {L::addr, w}, {L::row_stride, o.kt},
                         {L::col_stride, 1}},
                        0, kGemm));
    } else {
      // NMCompressed: entry E's value at val_addr + E, its index in nibble E (four a halfword, the
      // lowest first).
      std::vector<uint16_t> nib((o.idx.size() + 3) / 4, 0);
      for (size_t e = 0; e < o.idx.size(); ++e) nib[e / 4] = static_cast<uint16_t>(nib[e / 4] | o.idx[e] << (4 * (e % 4)));
      const uint32_t v = g_dram.put(o.val), x = g_dram.put(nib);
      const uint32_t groups = o.kt / b.mode.m;
      prog.push_back(mk(isa::OP_LD_SPW, 0,
                        {{W::bank, bank}, {W::rows, b.nt}, {W::groups, groups}, {W::n, b.mode.n}, {W::m, b.mode.m},
                         {W::val_addr, v}, {W::idx_addr, x}, {W::line_groups, groups}, {W::l0, 0}, {W::g0, 0}},
                        0, kGemm));
    }
    out[gi] = g_dram.alloc(2 * size_t(b.mt) * b.nt);
    const uint8_t flags = static_cast<uint8_t>(gi | (b.mode.sparse ? 2 : 0));
    prog.push_back(mk(isa::OP_GEMM, flags,
                      {{G::a_bank, bank}, {G::b_bank, bank}, {G::c_bank, 0}, {G::mt, b.mt}, {G::nt, b.nt}, {G::kt, o.kt},
                       {G::n, b.mode.sparse ? b.mode.n : 1}, {G::m, b.mode.sparse ? b.mode.m : 1}},
                      gi == 0 ? kLoad : kLoad | kStore, kStore));
    // The first store signals the second GEMM (it has read C); the second signals nothing.
    prog.push_back(mk(isa::OP_ST_2D, 1,
                      {{S::c_bank, 0}, {S::rows, b.mt}, {S::cols, b.nt}, {S::addr, isa::make_addr(0, uint32_t(out[gi]))},
                       {S::row_stride, b.nt}, {S::col_stride, 1}},
                      kGemm, gi == 0 ? kGemm : 0));
  }
  prog.push_back(isa::make_insn(isa::OP_FINISH));
  if (!g_dram.run(prog)) return false;
  for (int gi = 0; gi < 2; ++gi) {
    b.c[gi].resize(size_t(b.mt) * b.nt);
    for (size_t i = 0; i < b.c[gi].size(); ++i) b.c[gi][i] = g_dram.f32_at(out[gi] + 2 * i);
  }
  return true;
}

// ---- the Verilated array -------------------------------------------------------------------------

class Array {
 public:
  Array(int argc, char** argv) : wave_(dut_, argc, argv) {
    dut_.rst = 1;
    tick();
    dut_.rst = 0;
  }
  uint64_t cycles() const { return cycles_; }
  uint64_t stalls() const { return stalls_; }
  uint64_t steps() const { return steps_; }
  uint64_t substeps() const { return substeps_; }

  // GEMM gi of the batch, block by block; block (ib, jb)'s start shares its cycle with the previous
  // block's finish and (mostly) with its own first step. Results into got[mt][nt]. False when the
  // protocol fails (busy never falls, no out_valid) or a block's step cycles differ from
  // arch::gemm_block_substeps, the count the simulator charges.
  bool run(const Batch& b, int gi, std::vector<uint32_t>& got, Gen& g) {
    const Operand& o = b.op[gi];
    got.assign(size_t(b.mt) * b.nt, 0);
    const uint64_t want = arch::gemm_block_substeps(arch::PeArray{kRows, kCols}, o.entries, b.mode.sparse,
                                                    b.mode.n, b.mode.m);
    bool pending = false;
    uint32_t pib = 0, pjb = 0;
    for (uint32_t ib = 0; ib < b.mt; ib += kRows) {
      for (uint32_t jb = 0; jb < b.nt; jb += kCols) {
        dut_.start = 1;
        dut_.sparse = b.mode.sparse;
        dut_.nm_n = b.mode.sparse ? b.mode.n : g.u(17);   // ignored dense
        dut_.nm_m = b.mode.sparse ? b.mode.m : g.u(17);
        dut_.entries = o.entries;
        drive_finish(b, gi, pending, pib, pjb);
        const bool stall = g.u(8) == 0;   // a start without its first step
        present(b, o, ib, jb, g, stall, true);
        dut_.step = !stall;
        stalls_ += stall;
        uint64_t taken = !stall;
        tick();
        dut_.start = 0;
        if (pending && !collect(b, pib, pjb, got)) return false;
        pending = false;
        dut_.finish = 0;
        uint64_t guard = 0;
        while (dut_.busy) {
          if (++guard > 64 * uint64_t(arch::kMaxTileK)) {
            std::printf("FAIL: busy does not fall (%s, E %u)\n", b.mode.name().c_str(), o.entries);
            return false;
          }
          const bool idle = g.u(16) == 0;
          present(b, o, ib, jb, g, idle);
          dut_.step = !idle;
          stalls_ += idle;
          taken += !idle;
          tick();
        }
        dut_.step = 0;
        if (taken != want) {
          std::printf("FAIL: a block of %s, E %u took %llu step cycles; arch::gemm_block_substeps says %llu\n",
                      b.mode.name().c_str(), o.entries, (unsigned long long)taken, (unsigned long long)want);
          return false;
        }
        substeps_ += taken;
        steps_ += (o.entries + kLanes - 1) / kLanes;
        pending = true;
        pib = ib;
        pjb = jb;
      }
    }
    dut_.start = 0;
    drive_finish(b, gi, pending, pib, pjb);
    tick();
    dut_.finish = 0;
    return collect(b, pib, pjb, got);
  }

 private:
  void tick() {
    dut_.clk = 0;
    dut_.eval();
    wave_.dump(t_++);
    dut_.clk = 1;
    dut_.eval();
    wave_.dump(t_++);
    ++cycles_;
  }
  void drive_finish(const Batch& b, int gi, bool pending, uint32_t ib, uint32_t jb) {
    dut_.finish = pending;
    dut_.accumulate = pending && gi == 1;
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c) {
        const uint32_t i = ib + r, j = jb + c;
        const bool in = pending && gi == 1 && i < b.mt && j < b.nt;
        put32(dut_.c_in, r * kCols + c, in ? b.c[0][size_t(i) * b.nt + j] : 0x7fc00bad);
      }
  }
  // The operands the array names: row r's window A[i][win_base + w], column c's entries
  // entry_base + l; random bits outside the tile, and everywhere in a stall cycle.
  // A start cycle's first step takes entry 0 and window 0, whatever the bases read.
  void present(const Batch& b, const Operand& o, uint32_t ib, uint32_t jb, Gen& g, bool stall, bool start = false) {
    const uint32_t wb = start ? 0 : dut_.win_base, eb = start ? 0 : dut_.entry_base;
    for (int r = 0; r < kRows; ++r) {
      const uint32_t i = ib + r;
      for (int w = 0; w < kWin; ++w) {
        const uint32_t k = wb + w;
        const bool in = !stall && i < b.mt && k < o.kt;
        put16(dut_.act, r * kWin + w, in ? o.a[size_t(i) * o.kt + k] : static_cast<uint16_t>(g.u(65536)));
      }
    }
    for (int c = 0; c < kCols; ++c) {
      const uint32_t j = jb + c;
      for (int l = 0; l < kLanes; ++l) {
        const uint32_t e = eb + l;
        const bool in = !stall && j < b.nt && e < o.entries;
        const size_t at = size_t(j) * o.entries + e;
        put16(dut_.wval, c * kLanes + l, in ? o.val[at] : static_cast<uint16_t>(g.u(65536)));
        // An index is < m (LD_SPW checks it); outside the tile any value.
        put_bits(dut_.widx, kIb * (c * kLanes + l), kIb, in && b.mode.sparse ? o.idx[at] : g.u(1u << kIb));
      }
    }
  }
  bool collect(const Batch& b, uint32_t ib, uint32_t jb, std::vector<uint32_t>& got) {
    if (!dut_.out_valid) {
      std::printf("FAIL: out_valid low after finish\n");
      return false;
    }
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c) {
        const uint32_t i = ib + r, j = jb + c;
        if (i < b.mt && j < b.nt) got[size_t(i) * b.nt + j] = get32(dut_.out, r * kCols + c);
      }
    return true;
  }
  Vsat_pe_array dut_;
  Wave<Vsat_pe_array> wave_;
  uint64_t t_ = 0, cycles_ = 0, stalls_ = 0, steps_ = 0, substeps_ = 0;
};

// ---- operands ------------------------------------------------------------------------------------

// K of a tile: mostly short (a computation of E entries takes 1 + ceil(E / 8) cycles or more, and
// the test's time is the array's cycles), now and then up to a whole tile (kMaxTileK).
uint32_t pick_kt(Gen& g, const Mode& mode) {
  const uint32_t r = g.u(32);
  if (!mode.sparse) {
    if (r < 3) return 8 * (1 + g.u(8));  // whole steps: no lane adds +0 at the end
    if (r < 18) return 1 + g.u(16);
    if (r < 31) return 17 + g.u(48);
    return 65 + g.u(arch::kMaxTileK - 64);
  }
  // Sparse: E = groups * n entries; whole steps where 8 / n is whole, few groups, or any number.
  const uint32_t max_groups = arch::kMaxTileK / mode.m;
  uint32_t groups;
  if (r < 3) groups = std::min(max_groups, 8 * (1 + g.u(2)));
  else if (r < 18) groups = 1 + g.u(std::min(max_groups, std::max(1u, 16 / mode.n)));
  else if (r < 31) groups = 1 + g.u(std::min(max_groups, std::max(2u, 64 / mode.n)));
  else groups = 1 + g.u(max_groups);
  return groups * mode.m;
}

// Operands of one GEMM. Sparse lines: mostly n distinct ascending indices per group (what PGEN
// writes), sometimes any indices < m (repeated, unordered: the GEMM takes them as they are). The
// cancel flavour repeats activations and negates weights so that products cancel across lanes and
// within one (entries e and e - n of the same index, or e and e - 8 dense).
void fill(Gen& g, Flavour f, const Mode& mode, uint32_t mt, uint32_t nt, uint32_t kt, Operand& o) {
  o.kt = kt;
  o.entries = mode.sparse ? kt / mode.m * mode.n : kt;
  o.a.resize(size_t(mt) * kt);
  o.val.resize(size_t(nt) * o.entries);
  o.idx.assign(size_t(nt) * o.entries, 0);
  const Flavour ef = f == kCancel ? static_cast<Flavour>(g.u(kMixed)) : f;
  const Flavour el = ef == kCancel ? kNormal : ef;
  for (auto& x : o.a) x = g.element(el);
  for (auto& x : o.val) x = g.element(el);
  if (mode.sparse) {
    const bool ordered = g.u(4) != 0;
    for (uint32_t j = 0; j < nt; ++j)
      for (uint32_t gr = 0; gr < kt / mode.m; ++gr) {
        uint8_t* ix = &o.idx[size_t(j) * o.entries + size_t(gr) * mode.n];
        if (ordered) {
          uint32_t left = mode.n, slot = 0;
          for (uint32_t i = 0; i < mode.m && left; ++i)
            if (g.u(mode.m - i) < left) {   // a uniform n-subset, ascending
              ix[slot++] = static_cast<uint8_t>(i);
              --left;
            }
        } else {
          for (uint32_t s = 0; s < mode.n; ++s) ix[s] = static_cast<uint8_t>(g.u(mode.m));
        }
      }
  }
  if (f != kCancel) return;
  const uint32_t back = mode.sparse ? mode.n : (g.u(2) ? 8u : 1u);
  const uint32_t kback = mode.sparse ? mode.m : back;
  for (uint32_t k = kback; k < kt; ++k)
    for (uint32_t i = 0; i < mt; ++i) o.a[size_t(i) * kt + k] = o.a[size_t(i) * kt + k - kback];
  for (uint32_t j = 0; j < nt; ++j)
    for (uint32_t e = back; e < o.entries; ++e) {
      if (g.u(3) == 0) continue;
      const size_t at = size_t(j) * o.entries + e;
      o.val[at] = static_cast<uint16_t>(o.val[at - back] ^ 0x8000);
      o.idx[at] = o.idx[at - back];
    }
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t target = arg_or_env(argc, argv, "--vectors", "SAT_RTL_VECTORS", 100000);
  constexpr int kReferencePathEvery = 8;
  std::vector<Mode> modes = {{false, 1, 1}};
  for (int mi = 0; mi < arch::kNumSupportedM; ++mi)
    for (int n = 1; n <= arch::kSupportedM[mi]; ++n)
      modes.push_back({true, uint32_t(n), uint32_t(arch::kSupportedM[mi])});

  Gen g(0x5a7'a77a7);
  Array arr(argc, argv);
  std::printf("sat_pe_array %d x %d (%d lanes, window %d) vs HLS C-model (run_kernel, fast path), bit for bit "
              "(NaNs included):\n",
              kRows, kCols, kLanes, kWin);
  uint64_t total_bad = 0, classes[kClasses] = {}, ref_checked = 0, ref_bad = 0;
  bool enough = true;
  int batch_no = 0;
  for (const Mode& mode : modes) {
    uint64_t vectors = 0, bad = 0, batches = 0, cyc0 = arr.cycles(), st0 = arr.steps(),
             sub0 = arr.substeps();
    while (vectors < target) {
      Batch b;
      b.mode = mode;
      const Flavour f = static_cast<Flavour>(batch_no % kFlavours);
      g.special_odds = 4u << (2 * g.u(3));
      const uint32_t shape = g.u(8);
      b.mt = shape == 0 ? 1 + g.u(2 * kRows) : 1 + g.u(48);
      b.nt = shape == 1 ? 1 + g.u(2 * kCols) : 1 + g.u(48);
      fill(g, f, mode, b.mt, b.nt, pick_kt(g, mode), b.op[0]);
      // The second GEMM: its own operands, or the first's with the weights negated (C + sum cancels).
      if (g.u(4) == 0) {
        b.op[1] = b.op[0];
        for (auto& x : b.op[1].val) x ^= 0x8000;
      } else {
        fill(g, static_cast<Flavour>(g.u(kFlavours)), mode, b.mt, b.nt, pick_kt(g, mode), b.op[1]);
      }
      hls::set_reference_pe(false);
      if (!run_c_model(b)) return 1;
      std::vector<uint32_t> got[2];
      for (int gi = 0; gi < 2; ++gi)
        if (!arr.run(b, gi, got[gi], g)) return 1;
      for (int gi = 0; gi < 2; ++gi) {
        for (size_t o = 0; o < got[gi].size(); ++o) {
          ++vectors;
          const uint32_t w = b.c[gi][o], r = got[gi][o];
          ++classes[result_class(w)];
          if (r == w) continue;
          if (++bad <= 10)
            std::printf("MISMATCH %s batch %d (%s, %u x %u, kt %u, E %u) %s C[%zu][%zu]: rtl %08x, C-model %08x\n",
                        mode.name().c_str(), batch_no, kFlavourName[f], b.mt, b.nt, b.op[gi].kt, b.op[gi].entries,
                        gi ? "accumulate" : "overwrite", o / b.nt, o % b.nt, r, w);
        }
      }
      if (batch_no % kReferencePathEvery == 0) {
        Batch rb = b;
        hls::set_reference_pe(true);
        if (!run_c_model(rb)) return 1;
        hls::set_reference_pe(false);
        for (int gi = 0; gi < 2; ++gi)
          for (size_t o = 0; o < got[gi].size(); ++o) {
            ++ref_checked;
            const uint32_t w = rb.c[gi][o], r = got[gi][o];
            if (r == w) continue;
            if (++ref_bad <= 10)
              std::printf("MISMATCH vs reference PE path, %s batch %d [%zu]: rtl %08x, C-model %08x\n",
                          mode.name().c_str(), batch_no, o, r, w);
          }
      }
      ++batches;
      ++batch_no;
    }
    const uint64_t cyc = arr.cycles() - cyc0, st = arr.steps() - st0, sub = arr.substeps() - sub0;
    // Cycles a step of PE_LANES entries takes on average (its sub-steps; equal to the simulator's
    // count block by block, checked in run()).
    std::printf("  %-5s %7llu vectors (%3llu tiles, overwrite + accumulate), %llu mismatches; %llu cycles, "
                "%.2f per step\n",
                mode.name().c_str(), (unsigned long long)vectors, (unsigned long long)batches, (unsigned long long)bad,
                (unsigned long long)cyc, st ? double(sub) / double(st) : 0.0);
    total_bad += bad;
    enough = enough && vectors >= target;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  results: %llu normal, %llu subnormal, %llu +0, %llu -0, %llu inf, %llu NaN\n",
              (unsigned long long)classes[kClsNormal], (unsigned long long)classes[kClsSubnormal],
              (unsigned long long)classes[kClsPosZero], (unsigned long long)classes[kClsNegZero],
              (unsigned long long)classes[kClsInf], (unsigned long long)classes[kClsNan]);
  std::printf("vs the kernel's reference PE path: %llu vectors, %llu mismatches\n", (unsigned long long)ref_checked,
              (unsigned long long)ref_bad);
  std::printf("%zu modes, %llu array cycles (%llu stalls), %.1f s\n", modes.size(), (unsigned long long)arr.cycles(),
              (unsigned long long)arr.stalls(), secs);
  const bool ok = total_bad == 0 && ref_bad == 0 && enough;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
