#pragma once
// BF16 storage type and the FP32 <-> BF16 conversions every backend shares (DESIGN §4):
// round to nearest even, subnormals flush to (signed) zero, NaN stays NaN. The scalar conversions
// are dependency-free C++ (no C++20) so that the HLS kernel and the CUDA kernels compile them too.
#include <cstddef>
#include <cstdint>

#include "sat/hd.hpp"

namespace sat {

struct bf16 {
  uint16_t bits = 0;
};

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

SAT_HD inline float bf16_bits_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;  // bf16 subnormal input -> +-0
  return f32_from_bits(u);
}

inline bf16 to_bf16(float f) { return bf16{f32_to_bf16_bits(f)}; }
inline float to_f32(bf16 b) { return bf16_bits_to_f32(b.bits); }
// The FP32 value nearest to f that BF16 can hold (what a BF16 store then load returns).
inline float round_bf16(float f) { return bf16_bits_to_f32(f32_to_bf16_bits(f)); }

// Bulk conversions; written as plain loops the compiler vectorises.
void to_bf16(const float* in, bf16* out, size_t n);
void to_f32(const bf16* in, float* out, size_t n);
void round_bf16_inplace(float* x, size_t n);

}  // namespace sat
