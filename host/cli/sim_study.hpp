#pragma once
// The body of `sat sim` (sim.cpp), built only with the simulator (SAT_HAVE_SIM).
#include "args.hpp"

namespace sat::cli {

int run_sim_command(const Args& args);

}  // namespace sat::cli
