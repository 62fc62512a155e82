#pragma once
// The PE array's cycle count for one GEMM instruction, in closed form: the one formula the
// cycle-accurate model (sim/) and the scheduler's first-order estimate (sat compile) both use.
// Every cycle of a tile's steady state is alike (each PE consumes kPeLanes weights), so the count
// is exact for the array as docs/isa.md §6 describes it; fill and drain add the array's depth.
#include <cstdint>

#include "sat/arch/config.hpp"

namespace sat::arch {

// The PE array's shape. The default is the configured array (config.hpp); the simulator's
// design-space sweeps time other shapes through the same formulas.
struct PeArray {
  int rows = kPeRows, cols = kPeCols, lanes = kPeLanes;
  int window = kSelectWindowRatio;   // the N:M activation window, in multiples of the dense lanes
  // Cycles from the first operand read to the last accumulator written: the PE rows and columns
  // the data passes, plus the lane adder tree.
  constexpr int fill_cycles() const { return rows + cols + 3; }
  constexpr uint64_t peak_macs_per_cycle(bool sparse) const {
    return uint64_t(rows) * uint64_t(cols) * uint64_t(lanes) * (sparse ? uint64_t(window) : 1u);
  }
};

inline constexpr int kPeFillCycles = PeArray{}.fill_cycles();

inline constexpr uint64_t ceil_div_u64(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Elements of K a PE row consumes per cycle: `lanes` dense; in N:M mode `lanes` kept weights span
// lanes * M / N elements, up to the activation window.
inline constexpr uint64_t gemm_k_per_cycle(const PeArray& pe, bool sparse, uint32_t n, uint32_t m) {
  if (!sparse || n == 0 || n >= m) return uint64_t(pe.lanes);
  const uint64_t ratio_num = m, ratio_den = n;   // M/N, possibly fractional (3:4, 6:8)
  if (ratio_num >= ratio_den * uint64_t(pe.window)) return uint64_t(pe.lanes) * uint64_t(pe.window);
  return uint64_t(pe.lanes) * ratio_num / ratio_den;
}
inline constexpr uint64_t gemm_k_per_cycle(bool sparse, uint32_t n, uint32_t m) {
  return gemm_k_per_cycle(PeArray{}, sparse, n, m);
}

// Steady-state cycles of a GEMM of an mt x nt tile over kt elements of K (dense elements).
inline constexpr uint64_t gemm_steady_cycles(const PeArray& pe, uint32_t mt, uint32_t nt, uint32_t kt, bool sparse,
                                             uint32_t n, uint32_t m) {
  return ceil_div_u64(mt, uint64_t(pe.rows)) * ceil_div_u64(nt, uint64_t(pe.cols)) *
         ceil_div_u64(kt, gemm_k_per_cycle(pe, sparse, n, m));
}
inline constexpr uint64_t gemm_steady_cycles(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n,
                                             uint32_t m) {
  return gemm_steady_cycles(PeArray{}, mt, nt, kt, sparse, n, m);
}

inline constexpr uint64_t gemm_cycles(const PeArray& pe, uint32_t mt, uint32_t nt, uint32_t kt, bool sparse,
                                      uint32_t n, uint32_t m) {
  return gemm_steady_cycles(pe, mt, nt, kt, sparse, n, m) + uint64_t(pe.fill_cycles());
}
inline constexpr uint64_t gemm_cycles(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  return gemm_cycles(PeArray{}, mt, nt, kt, sparse, n, m);
}

// Multiply-accumulates the instruction performs (kept weights only in N:M mode).
inline constexpr uint64_t gemm_macs(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  const uint64_t k = sparse && m > 0 ? uint64_t{kt} * n / m : kt;
  return uint64_t{mt} * nt * k;
}

}  // namespace sat::arch
