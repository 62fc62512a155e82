#pragma once
// The study report of one simulated run (sat sim, docs/sim.md "Reports"): the program's per-layer
// entries (Program::layers: one layer in one pass) joined with the model's per-instruction records,
// giving per layer and per pass the cycles, PE utilisation, MACs, DRAM bytes and bandwidth per
// channel, on-chip buffer traffic, stall cycles by cause, energy; the step's totals, its compute and
// DRAM bounds, and the critical path by unit. Plain C++: the records come from the SimDevice.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sat/compiler.hpp"
#include "sat/device.hpp"
#include "sat_sim_study/energy.hpp"
#include "sat_sim_study/insn_record.hpp"
#include "sat_sim_study/sim_config.hpp"

namespace sat::sim {

// Counts over a set of instructions.
struct Tally {
  int64_t instructions = 0;
  uint64_t macs = 0, macs_sparse = 0;
  std::array<uint64_t, isa::kNumExecUnits> busy{};     // unit-cycles of own work
  std::array<uint64_t, kNumStallCauses> stall{};       // unit-cycles by cause
  std::array<uint64_t, arch::kDdrChannels> dram_read{}, dram_written{};
  uint64_t buffer_read = 0, buffer_written = 0, activates = 0, precharges = 0, vector_ops = 0;
  void add(const InsnRecord& r);
  uint64_t dram_bytes() const;
  EnergyEvents events(double seconds) const;
};

struct LayerRow {                 // one entry of Program::layers
  std::string layer, type, phase;
  int64_t first_insn = 0;
  uint64_t start = 0, end = 0;    // its first instruction's start, its last instruction's end
  uint64_t cycles = 0;            // how far it moved the step's completion frontier (rows sum to the step)
  // Its own interval, end - start. Rows can overlap (a row's instructions may still run after the
  // next row starts), so `cycles` can be shorter than the time the row's work took: utilisation,
  // bandwidth and the roofline use the span.
  uint64_t span() const { return end - start; }
  Tally tally;
  EnergyBreakdown energy;
};

// Where the step's time goes along its critical path: the chain of instructions, from the last to
// finish back to the first, each released by the one before it.
struct CriticalPath {
  int64_t instructions = 0;
  std::array<uint64_t, isa::kNumExecUnits> unit{};    // cycles the path spends executing on each unit
  std::array<uint64_t, isa::kNumExecUnits> unit_dram{};   // of those, waiting on DRAM beyond own work
  uint64_t dram = 0;                                  // their sum
  uint64_t fetch = 0;                                 // cycles no instruction of the path ran (fetch, wake-up)
};

struct Bounds {
  uint64_t compute = 0;   // MACs over the array's MACs a cycle (kept weights: rows x cols x lanes)
  uint64_t dram = 0;      // the busiest channel's bytes over its peak a cycle (AXI port or DIMM)
  uint64_t larger() const { return compute > dram ? compute : dram; }
  const char* bound_by() const { return compute >= dram ? "compute" : "dram"; }
};

struct StepReport {
  std::string description;
  SimConfig config;
  uint64_t cycles = 0;
  double wall_seconds = 0;
  Tally total;
  std::vector<LayerRow> layers;
  CriticalPath critical;
  Bounds bounds;
  EnergyBreakdown energy;
  // The stall cause that takes most of the gap between the cycles and the larger bound, with every
  // cause's share of that gap (from the critical path's view: what the path waited on).
  std::string gap_cause;
  std::map<std::string, double> gap_by_cause;
  RtlGemmTally rtl;   // config.gemm_core "rtl": the Verilated array's part
  double seconds() const { return cycles / (config.clock_mhz * 1e6); }
  double pe_utilisation(uint64_t macs, uint64_t cycles) const;
};

StepReport build_step_report(const Program& program, const std::vector<InsnRecord>& records,
                             const DeviceCounters& counters, const SimConfig& cfg, const std::string& description,
                             double wall_seconds);

// One DDR channel's peak in bytes a kernel cycle: the AXI port's kDdrBusBits / 8 or the DIMM's
// kDdrChannelGBs at cfg's clock, the lower (arch/config.hpp says which bounds when). The DRAM bound
// and the rooflines use it.
double dram_peak_bytes_per_cycle(const SimConfig& cfg);

// Bounds of a run of `macs` MACs moving the bytes of `t` (per channel) under `cfg`.
Bounds run_bounds(const Tally& t, const SimConfig& cfg);
CriticalPath critical_path(const std::vector<InsnRecord>& records);

// The report as JSON (keys documented in docs/sim.md; the step's total under "cycles") and the
// per-layer table as CSV (one row per layer and pass, same keys flattened).
nlohmann::ordered_json report_json(const StepReport& r);
std::string layers_csv(const StepReport& r);
// Cycles per pass ("ff", "loss", "bp", "wu", "update", "pregen", ...) in the order they appear.
std::vector<std::pair<std::string, uint64_t>> cycles_by_phase(const StepReport& r);
// Cycles during which some row of the pass was running (the union of its rows' spans).
uint64_t phase_span(const StepReport& r, const std::string& phase);
uint64_t phases_span(const StepReport& r, const std::vector<std::string>& phases);
// The PE array's utilisation over the product passes (FF, BP, WU): their MACs (kept weights only)
// over the array's dense peak for the cycles in which any of their rows ran.
double gemm_pe_utilisation(const StepReport& r);

}  // namespace sat::sim
