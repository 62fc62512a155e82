#pragma once
// The simulator's configuration: the accelerator of arch/config.hpp by default, with the values an
// architect varies in a study (array shape, tile buffers, clock, queues, vector lanes, bank ports,
// DRAM timing, energy per event) overridable from a JSON file (`sat sim --config FILE`) or a sweep.
// Overrides change the model's timing and the scheduler's tiles, never the datapath: results stay
// the kernel's bits. The keys, ranges and combination rules are in docs/sim.md ("Configuration").
#include <string>

#include <nlohmann/json.hpp>

#include "sat/arch/config.hpp"
#include "sat/arch/timing.hpp"
#include "sat/compiler.hpp"
#include "sat_sim_study/energy.hpp"

namespace sat::sim {

struct SimConfig {
  int clock_mhz = arch::kClockMHz;
  arch::PeArray pe;                                  // rows, cols, lanes, select window
  int tile_rows = arch::kMaxTileRows, tile_cols = arch::kMaxTileCols, tile_k = arch::kMaxTileK;
  int insn_queue_depth = arch::kInsnQueueDepth;
  int token_depth = arch::kTokenDepth;
  int vector_lanes = arch::kVectorLanes;   // elements a cycle of VEC and UPD, groups of PGEN
  int conv_patch = arch::kConvPatchElems;  // LD_CONV's patch buffer, elements (0: gather every window)
  int vec_scratch = arch::kVecScratchElems;  // VEC's scratch, BF16 elements (0: every pass from DRAM)
  int load_engines = arch::kLoadEngines;   // loads that run at once, one per DDR channel
  int fill_beats = arch::kLoadFillBeats;   // 64-byte beats a cycle into an operand bank
  int bank_read_ports = 1;         // per on-chip bank: BRAM/URAM in simple dual-port mode
  int bank_write_ports = 1;
  std::string dram_timing = "vcu1525";            // or "jedec_2400r" (sim/dram/ddr4.hpp)
  std::string dram_mapping = "row_column_bank";   // or "row_bank_column", "bank_row_column"
  int dram_queue_depth = 32;
  int dram_ctrl_latency = 0;       // extra controller/PHY pipeline, DRAM cycles
  EnergyModel energy = EnergyModel::defaults();
  // What computes the GEMM unit's products: "model", the kernel's datapath timed by
  // sat/arch/timing.hpp; or "rtl", the Verilated PE array (rtl/sat_pe_array.sv) clocked cycle by
  // cycle inside the model (docs/rtl.md, "Cosimulation"), which the build must include and whose
  // shape `pe` must be.
  std::string gemm_core = "model";

  // Throws sat::Error with the reason when a value or a combination is impossible.
  void validate() const;
  // Applies the overrides of a JSON object (nested as to_json writes it); `source` names the file in
  // errors. Unknown keys and wrong types are refused; validate() runs at the end.
  void apply_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_json() const;
  bool is_default() const;
  // The scheduler's options with this configuration's tiles.
  void apply_to(ScheduleOptions& opt) const;
  double peak_gflops(bool sparse) const;   // 2 flops per MAC at clock_mhz
  double port_peak_gbs() const;            // all channels' AXI ports: bus bytes a cycle at clock_mhz
};

// Reads and validates a configuration file; throws sat::Error naming the file and the problem.
SimConfig read_sim_config(const std::string& path);

// One "key=value" override of a sweep or the command line ("pe=32x16x8", "clock=250",
// "tile=64x64x256", "vector_lanes=8", "queue=32", "tokens=16", "ports=2", "gemm_core=rtl"); throws
// naming the key.
void apply_setting(SimConfig& cfg, const std::string& key, const std::string& value);

}  // namespace sat::sim
