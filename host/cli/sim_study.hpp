#pragma once
// The body of `sat sim` (sim.cpp), built only with the simulator (SAT_HAVE_SIM).
#include <string>

#include "args.hpp"
#include "sat_sim_study/sim_config.hpp"

namespace sat::cli {

int run_sim_command(const Args& args);

// The configuration of --config FILE, then the --set overrides, validated; every mode of `sat sim`
// takes it from here so that they agree.
sim::SimConfig sim_config_from(const Args& args);
// The values of `cfg` that differ from arch/config.hpp's defaults, as "key = value, ..." (JSON paths
// as --config spells them); empty for the default configuration.
std::string config_overrides(const sim::SimConfig& cfg);

}  // namespace sat::cli
