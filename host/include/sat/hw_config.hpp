#pragma once
// Host view of the accelerator configuration; the one source is sat/arch/config.hpp.
#include <array>

#include "sat/arch/config.hpp"

namespace sat::hw {

inline constexpr std::array<int, arch::kNumSupportedM> kSupportedM = {
    arch::kSupportedM[0], arch::kSupportedM[1], arch::kSupportedM[2], arch::kSupportedM[3]};
inline constexpr int kIndexBits = arch::kIndexBits;

}  // namespace sat::hw
