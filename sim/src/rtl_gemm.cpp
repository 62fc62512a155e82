// The Verilated PE array as the GEMM unit's core (rtl_gemm.hpp, docs/rtl.md "Cosimulation").
#include "rtl_gemm.hpp"

#if SAT_SIM_RTL

#include <string>

#include "Vsat_pe_array.h"
#include "sat/arch/config.hpp"
#include "sat/arch/hd.hpp"
#include "sat/error.hpp"

namespace sat::sim {

namespace {

using namespace sc_core;
using sc_dt::sc_bv;

// 0: the package's size, as Verilated without -GROWS / -GCOLS.
constexpr int kRows = SAT_RTL_ROWS > 0 ? SAT_RTL_ROWS : arch::kPeRows;
constexpr int kCols = SAT_RTL_COLS > 0 ? SAT_RTL_COLS : arch::kPeCols;
constexpr int kLanes = arch::kPeLanes;
constexpr int kWin = arch::kPeLanes * arch::kSelectWindowRatio;
constexpr int kIb = arch::kIndexBits;
constexpr int kActBits = kRows * kWin * 16, kValBits = kCols * kLanes * 16, kIdxBits = kCols * kLanes * kIb;
constexpr int kOutBits = kRows * kCols * 32;

// Element `i` of `bits` wide fields in a bit vector, through its 32-bit words.
template <int W>
void put_field(sc_bv<W>& v, int i, int bits, uint32_t value) {
  const int lo = i * bits, word = lo / 32, off = lo % 32;
  uint32_t w = v.get_word(word);
  const uint32_t mask = bits == 32 ? ~0u : ((1u << bits) - 1u) << off;
  w = (w & ~mask) | ((value << off) & mask);
  v.set_word(word, w);
}

class RtlGemmImpl final : public sc_module, public RtlGemm {
 public:
  explicit RtlGemmImpl(const sc_module_name& name) : sc_module(name), dut_("sat_pe_array") {
    dut_.clk(clk_);
    dut_.rst(rst_);
    dut_.start(start_);
    dut_.sparse(sparse_);
    dut_.nm_n(nm_n_);
    dut_.nm_m(nm_m_);
    dut_.entries(entries_);
    dut_.step(step_);
    dut_.busy(busy_);
    dut_.entry_base(entry_base_);
    dut_.win_base(win_base_);
    dut_.act(act_);
    dut_.wval(wval_);
    dut_.widx(widx_);
    dut_.finish(finish_);
    dut_.accumulate(accumulate_);
    dut_.c_in(c_in_);
    dut_.out_valid(out_valid_);
    dut_.out(out_);
    SC_THREAD(power_on_reset);
  }
  SC_HAS_PROCESS(RtlGemmImpl);
  int rows() const override { return kRows; }
  int cols() const override { return kCols; }

  uint64_t run(const kernel::GemmTile& t, const sc_time& period) override {
    half_ = period / 2.0;
    uint64_t cycles = 0;
    bool pending = false;
    uint32_t pib = 0, pjb = 0;
    for (uint32_t ib = 0; ib < t.mt; ib += kRows) {
      for (uint32_t jb = 0; jb < t.nt; jb += kCols) {
        // The block's start takes its first step and finishes the previous block.
        start_.write(true);
        sparse_.write(t.sparse);
        nm_n_.write(t.sparse ? t.n : 1);
        nm_m_.write(t.sparse ? t.m : 1);
        entries_.write(t.entries);
        step_.write(true);
        present(t, ib, jb, 0, 0);
        drive_finish(t, pending, pib, pjb);
        clock();
        ++cycles;
        start_.write(false);
        finish_.write(false);
        if (pending) collect(t, pib, pjb);
        while (busy_.read()) {
          if (cycles > guard(t)) throw Error("RTL cosimulation: the PE array's busy never fell (sat_pe_array)");
          present(t, ib, jb, win_base_.read(), entry_base_.read());
          clock();
          ++cycles;
        }
        step_.write(false);
        pending = true;
        pib = ib;
        pjb = jb;
      }
    }
    // The last block's finish, then the cycle its registered results go into the C bank.
    drive_finish(t, pending, pib, pjb);
    clock();
    finish_.write(false);
    collect(t, pib, pjb);
    clock();
    return cycles + 2;
  }

 private:
  // One reset cycle at the start of simulated time, within the first nanosecond: before any GEMM can
  // start (at least one cycle of fetch at 1 GHz, the highest clock a configuration takes), so that
  // it costs the GEMM unit no time.
  void power_on_reset() {
    const sc_time half(250, SC_PS);
    rst_.write(true);
    wait(half);
    clk_.write(true);
    wait(half);
    clk_.write(false);
    rst_.write(false);
  }
  static uint64_t guard(const kernel::GemmTile& t) {
    return (uint64_t{t.mt} / kRows + 1) * (uint64_t{t.nt} / kCols + 1) * (uint64_t{t.entries} + 1) * 4;
  }
  // One clock cycle: the inputs written before it are sampled at its rising edge, mid-period.
  void clock() {
    wait(half_);
    clk_.write(true);
    wait(half_);
    clk_.write(false);
  }
  // The operands the array names: row r's window A[i][win + w], column c's entries ent + l (zeros
  // outside the tile, which no valid lane selects).
  void present(const kernel::GemmTile& t, uint32_t ib, uint32_t jb, uint32_t win, uint32_t ent) {
    for (int r = 0; r < kRows; ++r) {
      const uint32_t i = ib + r;
      for (int w = 0; w < kWin; ++w) {
        const uint32_t k = win + w;
        put_field(act_bits_, r * kWin + w, 16, i < t.mt && k < t.kt ? t.a[size_t(i) * t.kt + k] : 0);
      }
    }
    for (int c = 0; c < kCols; ++c) {
      const uint32_t j = jb + c;
      for (int l = 0; l < kLanes; ++l) {
        const uint32_t e = ent + l;
        const bool in = j < t.nt && e < t.entries;
        const size_t at = size_t(j) * t.entries + e;
        put_field(val_bits_, c * kLanes + l, 16, in ? t.b[at] : 0);
        put_field(idx_bits_, c * kLanes + l, kIb, in && t.sparse ? t.bidx[at] : 0);
      }
    }
    act_.write(act_bits_);
    wval_.write(val_bits_);
    widx_.write(idx_bits_);
  }
  void drive_finish(const kernel::GemmTile& t, bool pending, uint32_t ib, uint32_t jb) {
    finish_.write(pending);
    accumulate_.write(pending && t.accumulate);
    if (!pending || !t.accumulate) return;
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c) {
        const uint32_t i = ib + r, j = jb + c;
        uint32_t bits = 0;
        if (i < t.mt && j < t.nt) bits = sat::f32_bits(t.c[size_t(i) * t.nt + j]);
        put_field(c_bits_, r * kCols + c, 32, bits);
      }
    c_in_.write(c_bits_);
  }
  void collect(const kernel::GemmTile& t, uint32_t ib, uint32_t jb) {
    if (!out_valid_.read()) throw Error("RTL cosimulation: out_valid low the cycle after finish (sat_pe_array)");
    const sc_bv<kOutBits> o = out_.read();
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c) {
        const uint32_t i = ib + r, j = jb + c;
        if (i < t.mt && j < t.nt) t.c[size_t(i) * t.nt + j] = sat::f32_from_bits(o.get_word(r * kCols + c));
      }
  }

  Vsat_pe_array dut_;
  // The clock has two drivers: the power-on reset and then the GEMM unit's process.
  sc_signal<bool, SC_MANY_WRITERS> clk_{"clk"};
  sc_signal<bool> rst_{"rst"}, start_{"start"}, sparse_{"sparse"}, step_{"step"}, busy_{"busy"},
      finish_{"finish"}, accumulate_{"accumulate"}, out_valid_{"out_valid"};
  sc_signal<uint32_t> nm_n_{"nm_n"}, nm_m_{"nm_m"}, entries_{"entries"}, entry_base_{"entry_base"},
      win_base_{"win_base"};
  sc_signal<sc_bv<kActBits>> act_{"act"};
  sc_signal<sc_bv<kValBits>> wval_{"wval"};
  sc_signal<sc_bv<kIdxBits>> widx_{"widx"};
  sc_signal<sc_bv<kOutBits>> c_in_{"c_in"}, out_{"out"};
  sc_bv<kActBits> act_bits_;
  sc_bv<kValBits> val_bits_;
  sc_bv<kIdxBits> idx_bits_;
  sc_bv<kOutBits> c_bits_;
  sc_time half_;
};

}  // namespace

std::unique_ptr<RtlGemm> make_rtl_gemm(const char* name) { return std::make_unique<RtlGemmImpl>(name); }

}  // namespace sat::sim

#else

namespace sat::sim {
std::unique_ptr<RtlGemm> make_rtl_gemm(const char*) { return nullptr; }
}  // namespace sat::sim

#endif
