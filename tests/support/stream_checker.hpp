#pragma once
// The tests' checker of a compiled instruction stream (sat::Program), without running it: the
// dependency tokens and the data flow through DRAM. Each entry returns the problems it found as
// strings naming the instruction (index, opcode, layer and phase), empty when the stream is
// consistent, for the caller to report (ADD_FAILURE() << problem).
#include <string>
#include <vector>

#include "sat/compiler.hpp"

namespace sat::test {

// Both parts below: check_tokens, then check_data_flow.
std::vector<std::string> check_stream(const Program& p);

// Tokens (docs/isa.md §4): pairs the k-th wait of unit V on unit U with the k-th signal of U
// towards V (FIFO order) and requires that signal earlier in the stream; no unit waits on or
// signals itself; CTRL neither waits nor signals; no token is left at FINISH; every recorded
// dependency (Program::dependencies, ScheduleOptions::record_dependencies) is ordered by the
// tokens' happens-before relation or by program order on one unit; and the units, run as decoupled
// in-order machines with token FIFOs of arch::kTokenDepth, never deadlock.
std::vector<std::string> check_tokens(const Program& p);

// Data flow (Program::insns; the prologue's forms count as host-provided): every DRAM access of an
// instruction lies inside one region of the memory map; every element read was written earlier in
// the stream or is host-provided (input, labels, masters, momentum, weight forms, control,
// statistics other than the saved mean/rstd); a convolution window or col2im target is written
// completely before it is read; every parameter gradient is written by its layer's own
// instructions (never zero-filled by the framework) and completely before the update reads it.
std::vector<std::string> check_data_flow(const Program& p);

}  // namespace sat::test
