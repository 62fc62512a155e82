#pragma once
// Host-facing entry of the SAT kernel compiled for the CPU (C-simulation): runs an instruction
// stream on sat_top over four DDR channel buffers. Used by the `hls` backend (hls/backend/) and
// the tests; the instruction set is sat/arch/isa.hpp, its semantics docs/isa.md.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"

namespace sat::hls {

// Runs `count` instructions on the C-simulated kernel over the four DDR channel buffers
// (halfword arrays of the given sizes); returns the kernel's status words (isa::kStatusWords).
// A null channel with size 0 is allowed (every access to it is out of range). Calls are
// serialised (the kernel's on-chip buffers are static state, as in hardware).
std::array<uint32_t, isa::kStatusWords> run_kernel(const isa::Insn* insns, size_t count,
                                                   uint16_t* const ddr[arch::kDdrChannels],
                                                   const uint64_t halfwords[arch::kDdrChannels]);

// The status in clear text: what went wrong, at which instruction (index and opcode), which field
// and value; "ok: ..." for a clean run.
std::string status_message(const std::array<uint32_t, isa::kStatusWords>& st);

}  // namespace sat::hls
