#pragma once
// The host's BF16 storage type and bulk conversions. The scalar conversions every implementation
// shares (round to nearest even, subnormals flushed; DESIGN §4) are in sat/arch/bf16_bits.hpp.
#include <cstddef>
#include <cstdint>

#include "sat/arch/bf16_bits.hpp"

namespace sat {

// No default member initialiser, so that buffers of it can be left uninitialised where a producer
// writes every element (sat::Tensor::uninitialized); bf16{} and std::vector<bf16>(n) are still 0.
struct bf16 {
  uint16_t bits;
};

inline bf16 to_bf16(float f) { return bf16{f32_to_bf16_bits(f)}; }
inline float to_f32(bf16 b) { return bf16_bits_to_f32(b.bits); }
// The FP32 value nearest to f that BF16 can hold (what a BF16 store then load returns).
inline float round_bf16(float f) { return bf16_bits_to_f32(f32_to_bf16_bits(f)); }

// Bulk conversions; written as plain loops the compiler vectorises.
void to_bf16(const float* in, bf16* out, size_t n);
void to_f32(const bf16* in, float* out, size_t n);
void round_bf16_inplace(float* x, size_t n);

}  // namespace sat
