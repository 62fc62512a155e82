#include "sat/bf16.hpp"

namespace sat {

void to_bf16(const float* in, bf16* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i].bits = f32_to_bf16_bits(in[i]);
}

void to_f32(const bf16* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = bf16_bits_to_f32(in[i].bits);
}

void round_bf16_inplace(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
}

}  // namespace sat
