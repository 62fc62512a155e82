#pragma once
// Host-facing entry of the SAT kernel compiled for the CPU (C-simulation): runs an instruction
// stream on sat_top over four DDR channel buffers. The `hls` device (hls/device/) runs programs
// through it; the kernel's own tests call it on hand-made streams. The instruction set is
// arch/include/sat/arch/isa.hpp, its semantics docs/isa.md; sat/arch/status_text.hpp decodes
// the status words it returns.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

namespace sat::hls {

struct RunLimit {
  bool has_deadline = false;
  std::chrono::steady_clock::time_point deadline{};
};

// Runs `count` instructions on the C-simulated kernel over the four DDR channel buffers
// (halfword arrays of the given sizes); returns the kernel's status words (isa::kStatusWords).
// A null channel with size 0 is allowed (every access to it is out of range). Calls are
// serialised (the kernel's on-chip buffers are static state, as in hardware). A run still going
// at `limit`'s deadline ends there with the status of what ran and `*stopped` set.
std::array<uint32_t, isa::kStatusWords> run_kernel(const isa::Insn* insns, size_t count,
                                                   uint16_t* const ddr[arch::kDdrChannels],
                                                   const uint64_t halfwords[arch::kDdrChannels],
                                                   const RunLimit& limit = {}, bool* stopped = nullptr);

// Tests: an observer that run_kernel calls around every run, under its lock. `before` sees the
// DRAM as the run starts, `after` the status (and whether the run was stopped at its deadline) with
// the DRAM as the run left it. The threaded synthesis-path test (tests/hls_threaded/) replays every
// run there and compares. Null (the default): nothing is called.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void before(const isa::Insn* insns, size_t count, uint16_t* const ddr[arch::kDdrChannels],
                      const uint64_t halfwords[arch::kDdrChannels]) = 0;
  virtual void after(const std::array<uint32_t, isa::kStatusWords>& status, bool stopped) = 0;
};
void set_run_observer(RunObserver* observer);

// The GEMM unit's reference path (the cycle-structured PE-array loop nest Vitis synthesises)
// instead of the fast C-simulation path; both give identical bits, which the tests check.
void set_reference_pe(bool on);

}  // namespace sat::hls
