#pragma once
// The SystemC model of the SAT accelerator (docs/sim.md): fetch/decode with the per-unit
// instruction queues, the six execution units as processes joined by the ISA's dependency-token
// FIFOs, and the DDR channels. Every instruction's effect comes from the kernel's own datapath
// (sat_hls/datapath.hpp), so results are the HLS C-model's bits; its time is this model's.
// One process per unit (not per PE), event-driven: a unit sleeps until an instruction, a token or
// its DRAM transfers wake it, and a GEMM's steady state is advanced in closed form
// (sat/arch/timing.hpp).
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

#include "dram_port.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"
#include "sat/device.hpp"
#include "sat_hls/datapath.hpp"

namespace sat::sim {

// What one run produced.
struct RunOutcome {
  StatusWords status{};
  DeviceCounters counters;
  bool stopped = false;   // the wall-clock deadline ended it
};

class Accelerator : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Accelerator);
  explicit Accelerator(const sc_core::sc_module_name& name);

  // Runs `insns` over `mem` to its end (FINISH, an error, a deadlock, or `deadline`); drives the
  // SystemC kernel itself (sc_start until no event is left).
  RunOutcome run(const std::vector<isa::Insn>& insns, HostDeviceMemory& mem, bool has_deadline,
                 std::chrono::steady_clock::time_point deadline);

 private:
  static constexpr int kExec = isa::kNumExecUnits;
  struct Entry {
    isa::Insn in;
    uint32_t index;
  };

  void fetch_process();
  void unit_process(int unit);
  uint64_t now_cycle() const;
  void wait_cycles(uint64_t n);
  // The cycles `in` occupies its unit from `start` on (its DRAM transfers reserved on the channels).
  uint64_t duration(int unit, const isa::Insn& in, uint64_t start, uint64_t* compute);
  void stop_run();   // first error or the deadline: every process drops its work
  bool past_deadline();

  hls::Datapath datapath_;
  std::array<DramPort, arch::kDdrChannels> dram_;
  sc_core::sc_time cycle_;

  // The run being simulated.
  const std::vector<isa::Insn>* insns_ = nullptr;
  bool has_deadline_ = false, stopped_ = false, aborted_ = false;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t start_cycle_ = 0, last_cycle_ = 0;
  uint32_t executed_ = 0, end_index_ = 0, end_opcode_ = isa::kNoOpcode;
  bool fetch_done_ = false, finish_seen_ = false;
  uint32_t fetch_pc_ = 0, finish_index_ = 0;
  std::array<std::deque<Entry>, kExec> queue_;
  std::array<std::array<int, kExec>, kExec> tokens_{};   // [producer][consumer]
  DeviceCounters counters_;

  sc_core::sc_event start_, abort_;
  std::array<sc_core::sc_event, kExec> pushed_, popped_;
  std::array<std::array<sc_core::sc_event, kExec>, kExec> token_in_, token_out_;
};

}  // namespace sat::sim
