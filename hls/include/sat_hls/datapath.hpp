#pragma once
// The kernel's datapath one instruction at a time, for a model that keeps its own time (the
// SystemC simulator, sim/): the very unit functions the C-simulation and the synthesised kernel
// run (hls/src/*_unit.cpp), over the same DDR halfword view, with on-chip banks of its own. A
// simulator that executes every instruction through it, in any order its dependency tokens allow,
// computes the same bits as sat_top; only the time is its own.
#include <cstdint>
#include <memory>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"
#include "sat_hls/gemm_tile.hpp"

namespace sat::hls {

class Datapath {
 public:
  Datapath();
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // The DDR channels the next instructions address (halfword arrays and their sizes, as sat_top's
  // gmem and halfwords arguments); clears the error record and the non-finite count.
  void attach(uint16_t* const ddr[arch::kDdrChannels], const uint64_t halfwords[arch::kDdrChannels]);
  // Fetch/decode's header check: the unit the instruction runs on, or -1 with the error recorded.
  int decode(const isa::Insn& in);
  // Executes `in` on `unit`; false once an error is recorded (the first error wins).
  bool execute(int unit, const isa::Insn& in);
  // For a model with a PE array of its own (the RTL cosimulation): checks GEMM instruction `in` as
  // execute does and names its tile in this datapath's banks, for that array to compute in place of
  // execute; false once an error is recorded.
  bool gemm_tile(const isa::Insn& in, kernel::GemmTile* out);
  // Records an error the scheduler found (deadlock, missing FINISH, tokens left): code and the
  // FIELD, VALUE and DETAIL words of the status block. The first error wins.
  void fail(uint32_t code, uint32_t field, uint32_t value, uint32_t detail);
  bool failed() const;
  // The status block of a run that ended at instruction `index` (opcode `opcode`, isa::kNoOpcode
  // for none) after `executed` instructions.
  void status(uint32_t index, uint32_t opcode, uint32_t executed, uint32_t out[isa::kStatusWords]) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sat::hls
