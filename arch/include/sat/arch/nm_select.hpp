#pragma once
// The N:M selection rule, dependency-free so that every implementation compiles the same code: the
// host library, the HLS kernel's pre-generation unit (synthesizable: fixed bounds for a fixed kM, no
// allocation, no recursion) and the CUDA kernels (__host__ __device__). Rule and format:
// docs/nm-format.md.
#include <cstdint>

#include "sat/arch/hd.hpp"

// Vectorisation hint for the lane loops; only where OpenMP is on (libsat), so that including this
// header never needs -fopenmp.
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#define SAT_NM_SIMD _Pragma("omp simd")
#else
#define SAT_NM_SIMD
#endif

namespace sat {

// The largest group a sparse (n < m) selection handles; validate_nm keeps sparse M within it.
inline constexpr int kMaxGroup = 16;

// Ranking key of a weight: its magnitude's bit pattern as an integer. For numbers this orders like
// |w|; a NaN ranks above infinity, so a group never keeps more than N.
SAT_HD inline uint32_t nm_rank_bits(float w) { return f32_bits(w) & 0x7fffffffu; }

// The selection rule, for kLanes groups at once: group `lane` is v[lane * lane_stride + i * stride],
// i < m. Sets keep[lane] bit i when element i is kept. Element i is kept when fewer than n others
// beat it, where j beats i if |v_j| > |v_i|, or |v_j| == |v_i| and j < i (ties go to the lower
// index). This is computed as written: each pair (j < i) is compared once on the magnitudes' bit
// patterns (nm_rank_bits), r_j >= r_i meaning j beats i and otherwise i beats j, and every element
// counts how many beat it. 32-bit compares, m(m-1)/2 of them whatever n is, no sort, no allocation,
// no data-dependent branch, and the lanes are independent, so the compiler vectorises across
// groups. kM > 0 fixes m at compile time.
template <int kM, int kLanes>
SAT_HD inline void nm_keep_masks(const float* v, long stride, long lane_stride, int m, int n,
                                 uint32_t* keep) {
  constexpr int kG = kM > 0 ? kM : kMaxGroup;
  const int mm = kM > 0 ? kM : m;
  uint32_t rank[kG][kLanes];
  uint32_t beaten[kG][kLanes];   // how many elements of the group beat element i
  for (int i = 0; i < mm; ++i) {
SAT_NM_SIMD
    for (int lane = 0; lane < kLanes; ++lane) {
      rank[i][lane] = nm_rank_bits(v[lane * lane_stride + i * stride]);
      beaten[i][lane] = 0;
    }
  }
  for (int i = 1; i < mm; ++i) {
    for (int j = 0; j < i; ++j) {
SAT_NM_SIMD
      for (int lane = 0; lane < kLanes; ++lane) {
        const uint32_t j_wins = rank[j][lane] >= rank[i][lane] ? 1u : 0u;
        beaten[i][lane] += j_wins;
        beaten[j][lane] += 1u - j_wins;
      }
    }
  }
SAT_NM_SIMD
  for (int lane = 0; lane < kLanes; ++lane) {
    uint32_t k = 0;
    for (int i = 0; i < mm; ++i) k |= static_cast<uint32_t>(beaten[i][lane] < static_cast<uint32_t>(n)) << i;
    keep[lane] = k;
  }
}

// The kept in-group indices, ascending, from a keep mask with n bits set.
SAT_HD inline void nm_indices_of(uint32_t keep, int n, uint8_t* idx) {
  for (int j = 0; j < n; ++j) {
#if defined(__CUDA_ARCH__)
    idx[j] = static_cast<uint8_t>(__ffs(keep) - 1);
#else
    idx[j] = static_cast<uint8_t>(__builtin_ctz(keep));   // keep has n - j > 0 bits left
#endif
    keep &= keep - 1;
  }
}

// Top-N of one group of M values v[0], v[stride], ..., v[(m-1)*stride]: writes the kept in-group
// indices to idx[0..n) in ascending order (rule: nm_keep_masks).
template <int kM = 0>
SAT_HD inline void nm_select_group(const float* v, long stride, int m, int n, uint8_t* idx) {
  uint32_t keep;
  nm_keep_masks<kM, 1>(v, stride, 0, m, n, &keep);
  const int mm = kM > 0 ? kM : m;
  nm_indices_of(keep, n < mm ? n : mm, idx);
}

}  // namespace sat
