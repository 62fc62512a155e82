#pragma once
// The PE array's cycle count for one GEMM instruction, in closed form: the one formula the
// cycle-accurate model (sim/) and the scheduler's first-order estimate (sat compile) both use, and
// the cycles the RTL array (rtl/sat_pe_array.sv) takes, which its test and the cosimulation
// (`sat sim --rtl`) check cycle for cycle (docs/rtl.md).
//
// The array computes an mt x nt tile block by block, rows x cols outputs at a time. A block is the
// entry sequence of its weight lines (E = kt dense, kt / m * n in N:M mode) taken `lanes` entries
// a step; a step takes one cycle when the groups of its entries lie in the activation window
// (lanes * window elements of K), else one sub-step per window's worth of its groups. Blocks run
// back to back (a block's start shares its cycle with the first step and with the previous
// block's finish); after the last block one cycle reduces the lanes and one writes the results.
#include <cstdint>

#include "sat/arch/config.hpp"

namespace sat::arch {

// The PE array's shape. The default is the configured array (config.hpp); the simulator's
// design-space sweeps time other shapes through the same formulas.
struct PeArray {
  int rows = kPeRows, cols = kPeCols, lanes = kPeLanes;
  int window = kSelectWindowRatio;   // the N:M activation window, in multiples of the dense lanes
  // Cycles after the last step of an instruction: the finish cycle (lane reduction, C + sum) and
  // the cycle the results are registered and written to the C bank.
  static constexpr int drain_cycles() { return 2; }
  constexpr uint64_t peak_macs_per_cycle(bool sparse) const {
    return uint64_t(rows) * uint64_t(cols) * uint64_t(lanes) * (sparse ? uint64_t(window) : 1u);
  }
};

inline constexpr uint64_t ceil_div_u64(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Entries of a weight line over kt elements of K.
inline constexpr uint64_t gemm_entries(uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  return sparse && m > 0 ? uint64_t{kt} / m * n : kt;
}

// Cycles of one block: its steps of `lanes` entries, each as many sub-steps as windows its groups
// need. Entries of consecutive lanes lie in the same group or the next one, so a step whose groups
// run from g_first to g_last takes ceil((g_last - g_first + 1) / window_groups) sub-steps, as the
// RTL sequencer's greedy split does. Dense is groups of one element (every step one cycle).
inline constexpr uint64_t gemm_block_substeps(const PeArray& pe, uint64_t entries, bool sparse, uint32_t n,
                                              uint32_t m) {
  const uint64_t lanes = uint64_t(pe.lanes), win = lanes * uint64_t(pe.window);
  const uint64_t per_group = sparse && n > 0 ? n : 1, extent = sparse && m > 0 ? m : 1;
  const uint64_t groups_in_window = win / extent > 0 ? win / extent : 1;
  // `lanes` consecutive entries touch at most 1 + ceil((lanes - 1) / n) groups: if those fit, every
  // step takes one cycle.
  if (1 + ceil_div_u64(lanes - 1, per_group) <= groups_in_window) return ceil_div_u64(entries, lanes);
  uint64_t cycles = 0;
  for (uint64_t e0 = 0; e0 < entries; e0 += lanes) {
    const uint64_t last = (e0 + lanes < entries ? e0 + lanes : entries) - 1;
    cycles += ceil_div_u64(last / per_group - e0 / per_group + 1, groups_in_window);
  }
  return cycles;
}

// Cycles of the steps of a GEMM of an mt x nt tile over kt elements of K (dense elements).
inline constexpr uint64_t gemm_steady_cycles(const PeArray& pe, uint32_t mt, uint32_t nt, uint32_t kt, bool sparse,
                                             uint32_t n, uint32_t m) {
  return ceil_div_u64(mt, uint64_t(pe.rows)) * ceil_div_u64(nt, uint64_t(pe.cols)) *
         gemm_block_substeps(pe, gemm_entries(kt, sparse, n, m), sparse, n, m);
}
inline constexpr uint64_t gemm_steady_cycles(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n,
                                             uint32_t m) {
  return gemm_steady_cycles(PeArray{}, mt, nt, kt, sparse, n, m);
}

inline constexpr uint64_t gemm_cycles(const PeArray& pe, uint32_t mt, uint32_t nt, uint32_t kt, bool sparse,
                                      uint32_t n, uint32_t m) {
  return gemm_steady_cycles(pe, mt, nt, kt, sparse, n, m) + uint64_t(PeArray::drain_cycles());
}
inline constexpr uint64_t gemm_cycles(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  return gemm_cycles(PeArray{}, mt, nt, kt, sparse, n, m);
}

// Multiply-accumulates the instruction performs (kept weights only in N:M mode).
inline constexpr uint64_t gemm_macs(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  return uint64_t{mt} * nt * gemm_entries(kt, sparse, n, m);
}

}  // namespace sat::arch
