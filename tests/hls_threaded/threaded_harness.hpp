#pragma once
// Runs the kernel's synthesis path (sat_hls_threaded: every dataflow process a thread) on a copy of
// a run's DRAM in a child process, so that a deadlock, a crash or a hang ends that run and never
// the test binary; and the observer that replays every C-simulation run of this binary there and
// compares DRAM and status bit for bit.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

namespace sat::test {

struct ThreadedRun {
  enum Outcome { finished, deadlock, crashed, timed_out } outcome = crashed;
  std::string report;   // the watchdog's report (deadlock) or what went wrong
  std::array<uint32_t, isa::kStatusWords> status{};
  std::array<std::vector<uint16_t>, arch::kDdrChannels> ddr;   // as the run left them
};

// `attached[c]` false: channel c is absent (null, size 0) as run_kernel passes it.
ThreadedRun run_threaded(const std::vector<isa::Insn>& insns,
                         const std::array<std::vector<uint16_t>, arch::kDdrChannels>& ddr,
                         const std::array<bool, arch::kDdrChannels>& attached);

// What the observer saw in this process so far.
struct DifferentialCounts {
  int compared = 0;         // runs whose DRAM and status equal the C-simulation's
  int errors = 0;           // failing streams: the same error (not the same side effects)
  int expected_hangs = 0;   // C-simulation reports STATUS_DEADLOCK; the synthesis path hangs
  int skipped = 0;          // stopped at a deadline in C-simulation
};
DifferentialCounts differential_counts();

}  // namespace sat::test
