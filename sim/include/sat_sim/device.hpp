#pragma once
// The `sim` device: the SystemC model of the accelerator behind the Device interface
// (sat/device.hpp); its RunResult carries DeviceCounters (cycles, busy and stall cycles per unit,
// DRAM bytes per channel). A SimDevice also takes a configuration other than arch/'s defaults
// (sat_sim_study/sim_config.hpp) and records every instruction's timing and events for the study
// reports of `sat sim` (sat_sim_study/insn_record.hpp). docs/sim.md.
#include <functional>
#include <memory>
#include <vector>

#include "sat/device.hpp"
#include "sat_sim_study/insn_record.hpp"
#include "sat_sim_study/sim_config.hpp"

namespace sat::sim {

class SimDevice : public Device {
 public:
  // The configuration of the following runs (validated; throws sat::Error with the reason).
  virtual void configure(const SimConfig& cfg) = 0;
  virtual const SimConfig& config() const = 0;
  // Fills *out with one record per executed instruction of each following run, in the order they
  // started (cleared at each run's start); nullptr stops recording.
  virtual void record(std::vector<InsnRecord>* out) = 0;
  // Called every few thousand instructions of a run with (executed, stream length); empty: none.
  virtual void on_progress(std::function<void(uint64_t, uint64_t)> fn) = 0;
  // The next run starts from a cold memory system: every DRAM row closed and the channels' refresh
  // schedule from the run's start, as after power-up, so that its timing does not depend on what
  // ran before in this process (the model is one per process, and a run otherwise continues the
  // channels' state). The studies of `sat sim` start each point so.
  virtual void cold_start() = 0;
  // The last run's RTL GEMM core tally (zeros unless the configuration's gemm_core is "rtl").
  virtual RtlGemmTally rtl_tally() const = 0;
};

std::unique_ptr<SimDevice> make_sim_device(const SimConfig& cfg = SimConfig{});

// Whether this build holds the Verilated PE array for gemm_core "rtl", and its shape (rows, cols).
bool sim_has_rtl_gemm(int* rows = nullptr, int* cols = nullptr);

}  // namespace sat::sim
