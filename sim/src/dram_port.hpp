#pragma once
// One DDR channel as the units see it: the DDR4 channel model (sim/dram/ddr4.hpp: banks, rows,
// refresh, turnaround, the 512-bit AXI port and its request queue) fed with an instruction's DRAM
// accesses (sat/arch/access.hpp) as AXI transactions. A unit issues all of an instruction's
// transactions when it starts; the instruction's memory time ends with the last one.
#include <cstdint>

#include "ddr4.hpp"
#include "sat/arch/access.hpp"
#include "sat_sim_study/sim_config.hpp"

namespace sat::sim {

class DramPort {
 public:
  DramPort(int channel, const SimConfig& cfg);

  // A run starts at absolute kernel cycle `base` (the channel's time runs on across runs: its rows
  // stay open); statistics restart.
  void begin_run(uint64_t base);
  // Issues `a` at run cycle `issue`; returns the run cycle its last transaction completes.
  // Contiguous rows (or columns) of a strided access are one transaction each; a convolution
  // window, whose layout the fields do not give, is taken as `rows` runs of `cols` elements.
  uint64_t transfer(uint64_t issue, const isa::DramAccess& a);

  const Ddr4Stats& stats() const { return ddr_.stats(); }

 private:
  Ddr4Channel ddr_;
  uint64_t base_ = 0;
};

}  // namespace sat::sim
