#pragma once
// What the SystemC model records of each instruction it runs (sat sim, docs/sim.md): when it
// entered its unit's queue, started and ended, what it waited on and for how long, which earlier
// instruction released it (the critical path walks these), and the events the energy model counts.
// Cycles count from the run's start, at the configured clock.
#include <array>
#include <cstdint>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"

namespace sat::sim {

// Why a unit did not execute: waiting for a token from a unit (one cause per producer), for room in
// a token FIFO it signals, for its next instruction while fetch is held behind another unit's full
// queue, for an on-chip bank port, or for its DRAM transfers beyond its own work.
enum StallCause : int {
  kStallTokenFirst = 0,   // + producer unit (isa::UNIT_LOAD ... isa::UNIT_PGEN)
  kStallTokenFull = isa::kNumExecUnits,
  kStallQueue,
  kStallBank,
  kStallDram,
  kNumStallCauses
};
// "token_LOAD" ... "token_PGEN", "token_full", "queue", "bank", "dram": the report's keys.
const char* stall_cause_name(int cause);

// What the GEMM unit's RTL core did in a run whose gemm_core is "rtl" (docs/rtl.md, "Cosimulation"):
// its GEMM instructions, the cycles the Verilated array took for them, and how many took other
// than sat/arch/timing.hpp's count (the core model's): 0 when the two are cycle-equal.
struct RtlGemmTally {
  uint64_t instructions = 0, cycles = 0, differ = 0;
};

// What released an instruction last (its start waited for it).
enum class Release : uint8_t { fetch, unit, token, token_room, bank };

struct InsnRecord {
  uint32_t index = 0;             // position in the stream
  uint8_t unit = 0;
  uint64_t enqueue = 0;           // entered its unit's queue
  uint64_t start = 0, end = 0;    // occupied its unit [start, end)
  uint64_t compute = 0;           // of [start, end): its own work; the rest waited on DRAM
  std::array<uint32_t, kNumStallCauses> stall{};   // cycles by cause (the unit-side view, see above)
  int64_t released_by = -1;       // the instruction (stream index) whose completion let it start
  Release release = Release::fetch;
  // Fetch held this instruction behind its full queue until instruction `fetch_gate` started (and
  // left the queue); -1: fetch reached it one cycle after the instruction before it.
  int64_t fetch_gate = -1;
  // Events for the report and the energy model.
  uint64_t macs = 0;
  bool sparse = false;            // a GEMM in N:M mode
  uint64_t buffer_read = 0, buffer_written = 0;     // on-chip bank bytes
  std::array<uint64_t, arch::kDdrChannels> dram_read{}, dram_written{};
  uint32_t activates = 0, precharges = 0;
  uint64_t vector_ops = 0;        // elements through VEC, UPD or PGEN
};

}  // namespace sat::sim
