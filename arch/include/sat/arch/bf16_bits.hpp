#pragma once
// The scalar FP32 <-> BF16 conversions every implementation shares (DESIGN §4): round to nearest
// even, subnormals flush to (signed) zero, NaN stays NaN. Dependency-free C++17 so that the host
// library, the HLS kernel and the CUDA kernels compile this same code.
#include <cstdint>

#include "sat/arch/hd.hpp"

namespace sat {

SAT_HD inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = f32_bits(f);
  const uint32_t exp = u & 0x7f800000u;
  if (exp == 0x7f800000u) {                      // inf or NaN: truncate, keep NaN quiet
    return static_cast<uint16_t>((u >> 16) | ((u & 0x007fffffu) ? 0x0040u : 0u));
  }
  if (exp == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero / subnormal -> +-0
  u += 0x7fffu + ((u >> 16) & 1u);               // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

// The one NaN a GEMM result carries (docs/isa.md, "Numerics"): the PE array writes every NaN it
// produces as this quiet NaN. Where two NaNs meet, which payload an adder passes on is the
// implementation's choice (x86 keeps its first source's, which a compiler picks), so without one
// canonical NaN the C-model's own builds, its two GEMM paths and the RTL would differ in payloads.
inline constexpr uint32_t kCanonicalNanBits = 0x7fc00000u;
SAT_HD inline float canonical_nan(float f) {
  return (f32_bits(f) & 0x7fffffffu) > 0x7f800000u ? f32_from_bits(kCanonicalNanBits) : f;
}

SAT_HD inline float bf16_bits_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;  // bf16 subnormal input -> +-0
  return f32_from_bits(u);
}

}  // namespace sat
