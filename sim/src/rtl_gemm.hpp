#pragma once
// The GEMM unit's core in RTL: the Verilated PE array (rtl/sat_pe_array.sv, `verilator --sc`) inside
// the SystemC model, clocked cycle by cycle by the GEMM unit's process when the configuration's
// gemm_core is "rtl" (docs/rtl.md, "Cosimulation"). It computes each GEMM tile in the datapath's
// own banks, so the results are the RTL's bits, and the unit's time is the cycles the array took.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>

#include <cstdint>
#include <memory>

#include "sat_hls/gemm_tile.hpp"

namespace sat::sim {

class RtlGemm {
 public:
  virtual ~RtlGemm() = default;
  // The array's shape, fixed when it was Verilated (SAT_RTL_ARRAY_ROWS x SAT_RTL_ARRAY_COLS).
  virtual int rows() const = 0;
  virtual int cols() const = 0;
  // Computes tile `t` into t.c block by block, from the calling SystemC thread, one clock period
  // `period` of simulated time per cycle; returns the cycles taken, arch::gemm_cycles's count when
  // the RTL and the core model agree. Throws sat::Error when the array breaks its protocol.
  virtual uint64_t run(const kernel::GemmTile& t, const sc_core::sc_time& period) = 0;
};

// The array as module `name`, built during elaboration (a module can be made only then); nullptr in
// a build without it (Verilator missing, or SAT_SIM_RTL off).
std::unique_ptr<RtlGemm> make_rtl_gemm(const char* name);

}  // namespace sat::sim
