#pragma once
// Accelerator configuration constants the host needs today. The accelerator issue replaces this
// file with the one configuration source (array shape, buffers, DDR channels, clock) from which
// HLS, RTL, simulator and host all read; until then this is that single source.
#include <array>

namespace sat::hw {

// Group sizes M the pre-generation unit and the PE array support. Indices are 4-bit (M <= 16).
inline constexpr std::array<int, 4> kSupportedM = {2, 4, 8, 16};
inline constexpr int kIndexBits = 4;

}  // namespace sat::hw
