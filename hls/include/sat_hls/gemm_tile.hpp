#pragma once
// One GEMM instruction's tile as the GEMM unit sees it: its shape and its operands in the on-chip
// banks (hls/src/gemm_unit.cpp states the contract). The kernel computes it; a model that brings its
// own PE array (the RTL cosimulation of the simulator, docs/rtl.md) gets the same view through
// sat::hls::Datapath::gemm_tile. Plain C++17 without dependencies: the kernel's sources include it.
#include <cstdint>

namespace sat::kernel {

struct GemmTile {
  const uint16_t* a;     // [mt][kt] BF16
  const uint16_t* b;     // dense [nt][kt] or N:M values [nt][entries] BF16
  const uint8_t* bidx;   // N:M in-group indices [nt][entries]
  float* c;              // [mt][nt] FP32, read with accumulate
  uint32_t mt, nt, kt, n, m, entries;   // entries: kt dense, kt / m * n N:M
  bool sparse, accumulate;
};

}  // namespace sat::kernel
