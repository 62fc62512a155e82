#pragma once
// The `sim` device: the SystemC model of the accelerator behind the Device interface
// (sat/device.hpp); its RunResult carries DeviceCounters (cycles, busy and stall cycles per unit,
// DRAM bytes per channel). docs/sim.md.
#include <memory>

#include "sat/device.hpp"

namespace sat::sim {

std::unique_ptr<Device> make_sim_device();

}  // namespace sat::sim
