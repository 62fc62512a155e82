#pragma once
// The SystemC model of the SAT accelerator (docs/sim.md): fetch/decode with the per-unit
// instruction queues, the six execution units as processes joined by the ISA's dependency-token
// FIFOs, the on-chip banks with their ports, and the DDR channels. Every instruction's effect comes
// from the kernel's own datapath (sat_hls/datapath.hpp), so results are the HLS C-model's bits; its
// time is this model's. One process per unit (not per PE), event-driven: a unit sleeps until an
// instruction, a token, a bank port or its DRAM transfers wake it, and a GEMM's steady state is
// advanced in closed form (sat/arch/timing.hpp).
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dram_port.hpp"
#include "rtl_gemm.hpp"
#include "sat/arch/access.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"
#include "sat/device.hpp"
#include "sat_hls/datapath.hpp"
#include "sat_sim_study/insn_record.hpp"
#include "sat_sim_study/sim_config.hpp"

namespace sat::sim {

// What one run produced.
struct RunOutcome {
  StatusWords status{};
  DeviceCounters counters;
  bool stopped = false;   // the wall-clock deadline ended it
  RtlGemmTally rtl;
  std::string error;      // the RTL core broke its protocol (the run stopped there)
};

class Accelerator : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Accelerator);
  explicit Accelerator(const sc_core::sc_module_name& name);

  // The Verilated PE array, or nullptr in a build without it.
  const RtlGemm* rtl_gemm() const { return rtl_.get(); }

  // Runs `insns` over `mem` to its end (FINISH, an error, a deadlock, or `deadline`) with the timing
  // of `cfg`; drives the SystemC kernel itself (sc_start until no event is left). `records`, when
  // set, receives one record per executed instruction. `cold`: the DRAM channels start afresh at
  // the run's start (rows closed, refresh from there) instead of continuing the last run's.
  RunOutcome run(const std::vector<isa::Insn>& insns, HostDeviceMemory& mem, const SimConfig& cfg,
                 std::vector<InsnRecord>* records, const std::function<void(uint64_t, uint64_t)>& progress,
                 bool has_deadline, std::chrono::steady_clock::time_point deadline, bool cold = false);

 private:
  static constexpr int kExec = isa::kNumExecUnits;
  struct Entry {
    isa::Insn in;
    uint32_t index;
    uint64_t enqueue;
    int64_t gate;   // the instruction whose start made room for it in a full queue; -1: none
  };
  struct Token {   // one entry of a token FIFO: who signalled it, and when
    uint32_t producer;
    uint64_t cycle;
  };
  struct Port {    // one port of an on-chip bank: busy until `free`, by instruction `owner`
    uint64_t free = 0;
    uint32_t owner = 0;
  };
  static constexpr int kBuffers = 3;   // isa::BUF_A, BUF_B, BUF_C
  static constexpr int kMaxPorts = 2;

  void fetch_process();
  void unit_process(int unit);
  uint64_t now_cycle() const;
  void wait_cycles(uint64_t n);
  // Takes `cfg`'s clock and DRAM settings; the channels are built again (from the current cycle)
  // when those change or `cold` asks.
  void configure(const SimConfig& cfg, bool cold = false);
  // The cycles `in` occupies its unit from `start` on (its DRAM transfers reserved on the channels),
  // its events into `rec`.
  uint64_t duration(int unit, const isa::Insn& in, uint64_t start, InsnRecord& rec);
  int load_engine(const isa::Insn& in) const;
  // The port of each bank access of `in` it would take now; false and the earliest cycle one of them
  // frees (and its owner) when a port is busy.
  bool claim_ports(const isa::BankAccess* acc, int n, uint64_t now, Port** claimed, uint64_t* free_at,
                   uint32_t* owner);
  void stop_run();   // first error or the deadline: every process drops its work
  bool past_deadline();

  hls::Datapath datapath_;
  std::unique_ptr<RtlGemm> rtl_;
  bool use_rtl_ = false;          // this run's GEMMs go to rtl_
  uint64_t gemm_rtl_cycles_ = 0;  // the cycles rtl_ took for the GEMM being timed
  RtlGemmTally rtl_tally_;
  std::string rtl_error_;
  SimConfig cfg_;
  nlohmann::json dram_key_;   // the DRAM settings the channels were built for
  std::vector<std::unique_ptr<DramPort>> dram_;
  uint64_t dram_origin_ = 0;   // the absolute cycle the channels were built at: their time 0
  sc_core::sc_time cycle_;

  // The run being simulated.
  const std::vector<isa::Insn>* insns_ = nullptr;
  std::vector<InsnRecord>* records_ = nullptr;
  const std::function<void(uint64_t, uint64_t)>* progress_ = nullptr;
  bool has_deadline_ = false, stopped_ = false, aborted_ = false;
  std::chrono::steady_clock::time_point deadline_;
  sc_core::sc_time start_time_;
  uint64_t last_cycle_ = 0;
  uint32_t executed_ = 0, end_index_ = 0, end_opcode_ = isa::kNoOpcode;
  bool fetch_done_ = false, finish_seen_ = false;
  uint32_t fetch_pc_ = 0, finish_index_ = 0;
  std::array<std::deque<Entry>, kExec> queue_;
  std::array<std::array<std::deque<Token>, kExec>, kExec> tokens_;   // [producer][consumer]
  std::array<std::array<Token, kExec>, kExec> last_pop_{};           // room made in [p][c], by whom
  std::array<uint64_t, kExec> unit_free_{};                          // end of each unit's last instruction
  std::array<int64_t, kExec> unit_last_{};                           // and its stream index (-1: none yet)
  std::array<int64_t, kExec> unit_popped_{};                         // the last instruction to leave each queue
  // The load unit's DMA engines (SimConfig::load_engines): when each is free and what it ran last,
  // and when the unit's last instruction retired (tokens leave in stream order).
  std::array<uint64_t, arch::kDdrChannels> engine_free_{};
  std::array<int64_t, arch::kDdrChannels> engine_last_{};
  uint64_t load_retire_ = 0;
  std::array<std::array<std::array<Port, kMaxPorts>, arch::kBanks>, kBuffers> read_ports_{}, write_ports_{};
  DeviceCounters counters_;

  sc_core::sc_event start_, abort_;
  std::array<sc_core::sc_event, kExec> pushed_, popped_;
  std::array<std::array<sc_core::sc_event, kExec>, kExec> token_in_, token_out_;
};

}  // namespace sat::sim
