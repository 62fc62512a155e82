#pragma once
// The PE array's cycle count for one GEMM instruction, in closed form: the one formula the
// cycle-accurate model (sim/) and the scheduler's first-order estimate (sat compile) both use.
// Every cycle of a tile's steady state is alike (each PE consumes kPeLanes weights), so the count
// is exact for the array as docs/isa.md §6 describes it; fill and drain add the array's depth.
#include <cstdint>

#include "sat/arch/config.hpp"

namespace sat::arch {

// Cycles from the first operand read to the last accumulator written: the PE rows and columns the
// data passes, plus the lane adder tree.
inline constexpr int kPeFillCycles = kPeRows + kPeCols + 3;

inline constexpr uint64_t ceil_div_u64(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Elements of K a PE row consumes per cycle: kPeLanes dense; in N:M mode kPeLanes kept weights span
// kPeLanes * M / N elements, up to the activation window's kSelectWindowRatio.
inline constexpr uint64_t gemm_k_per_cycle(bool sparse, uint32_t n, uint32_t m) {
  if (!sparse || n == 0 || n >= m) return kPeLanes;
  const uint64_t ratio_num = m, ratio_den = n;   // M/N, possibly fractional (3:4, 6:8)
  if (ratio_num >= ratio_den * kSelectWindowRatio) return uint64_t{kPeLanes} * kSelectWindowRatio;
  return uint64_t{kPeLanes} * ratio_num / ratio_den;
}

// Steady-state cycles of a GEMM of an mt x nt tile over kt elements of K (dense elements).
inline constexpr uint64_t gemm_steady_cycles(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n,
                                             uint32_t m) {
  return ceil_div_u64(mt, kPeRows) * ceil_div_u64(nt, kPeCols) * ceil_div_u64(kt, gemm_k_per_cycle(sparse, n, m));
}

inline constexpr uint64_t gemm_cycles(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  return gemm_steady_cycles(mt, nt, kt, sparse, n, m) + kPeFillCycles;
}

// Multiply-accumulates the instruction performs (kept weights only in N:M mode).
inline constexpr uint64_t gemm_macs(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  const uint64_t k = sparse && m > 0 ? uint64_t{kt} * n / m : kt;
  return uint64_t{mt} * nt * k;
}

}  // namespace sat::arch
