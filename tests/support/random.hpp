#pragma once
// Seeded random test data shared by the suites.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace sat::test {

// n samples of N(0, 1) from `seed` (the same values for the same seed on every run); with_ties
// rounds them to halves, so that equal magnitudes (and zeros) are common and the N:M tie rule is
// exercised.
inline std::vector<float> randn(size_t n, uint64_t seed, bool with_ties = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) {
    x = d(rng);
    if (with_ties) x = std::round(x * 2.0f) / 2.0f;
  }
  return v;
}

}  // namespace sat::test
