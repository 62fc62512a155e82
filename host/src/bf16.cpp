#include "sat/bf16.hpp"

#include <algorithm>
#include <cstdint>

#include "cpu/simd.hpp"

namespace sat {

namespace {
// Large conversions (a CNN's activations) are split over the threads; each chunk runs on the SIMD
// path chosen at run time (cpu/simd.cpp).
constexpr int64_t kChunk = 1 << 16;

template <class F>
void chunked(size_t count, F&& f) {
  const auto n = static_cast<int64_t>(count);
#pragma omp parallel for schedule(static) if (n > 4 * kChunk)
  for (int64_t i = 0; i < n; i += kChunk) f(i, std::min(kChunk, n - i));
}
}  // namespace

void to_bf16(const float* in, bf16* out, size_t n) {
  chunked(n, [&](int64_t i, int64_t len) { cpu::simd::to_bf16(in + i, out + i, len); });
}

void to_f32(const bf16* in, float* out, size_t n) {
  chunked(n, [&](int64_t i, int64_t len) { cpu::simd::to_f32(in + i, out + i, len); });
}

void round_bf16_inplace(float* x, size_t n) {
  chunked(n, [&](int64_t i, int64_t len) { cpu::simd::round_bf16_inplace(x + i, len); });
}

}  // namespace sat
