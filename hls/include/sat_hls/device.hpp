#pragma once
// The `hls` device: the C-simulated SAT kernel behind the Device interface (sat/device.hpp).
#include <memory>

#include "sat/device.hpp"

namespace sat::hls {

std::unique_ptr<Device> make_hls_device();

}  // namespace sat::hls
