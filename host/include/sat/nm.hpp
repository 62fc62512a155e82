#pragma once
// The N:M core: settings, top-N selection, masks along either axis, and the compressed format.
// Every backend (CPU, HLS, RTL golden, CUDA reference) selects through nm_select_group so that all
// pick the same mask. Format and tie rule: docs/nm-format.md.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sat/bf16.hpp"

// Vectorisation hint for the lane loops of nm_keep_masks; only where OpenMP is on (libsat), so that
// including this header never needs -fopenmp.
#if defined(_OPENMP)
#define SAT_NM_SIMD _Pragma("omp simd")
#else
#define SAT_NM_SIMD
#endif

namespace sat {

// N of every M consecutive weights are kept. n == m means dense.
struct NM {
  int n = 0;
  int m = 0;
  bool dense() const { return n == m; }
  std::string str() const { return std::to_string(n) + ":" + std::to_string(m); }
  bool operator==(const NM&) const = default;

  // Parses "2:8" (or "dense", which becomes 1:1). Throws sat::Error naming the text on bad syntax or
  // an unsupported setting.
  static NM parse(std::string_view text);
};

// Checks 1 <= n <= m and m in hw::kSupportedM (dense n == m is always allowed). Throws sat::Error.
void validate_nm(NM nm);

// Which dimension of W[Cout][K] the groups of M run along.
enum class Axis { K, Cout };
const char* axis_name(Axis a);

// The largest group a sparse (n < m) selection handles; validate_nm keeps sparse M within it.
inline constexpr int kMaxGroup = 16;

// Ranking key of a weight: its magnitude's bit pattern as an integer. For numbers this orders like
// |w|; a NaN ranks above infinity, so a group never keeps more than N.
inline uint32_t nm_rank_bits(float w) { return std::bit_cast<uint32_t>(w) & 0x7fffffffu; }

// The selection rule, for kLanes groups at once: group `lane` is v[lane * lane_stride + i * stride],
// i < m. Sets keep[lane] bit i when element i is kept. Element i is kept when fewer than n others
// beat it, where j beats i if |v_j| > |v_i|, or |v_j| == |v_i| and j < i (ties go to the lower
// index). Appending (kMaxGroup - i) to the magnitude key makes the keys unique and encodes the tie
// rule, so "beats" is plain ">" on keys and the kept set is the keys at or above the n-th largest,
// found with n max-passes: no sort, no allocation, no data-dependent branch, and the lanes are
// independent, so the compiler vectorises across groups. kM > 0 fixes m at compile time.
template <int kM, int kLanes>
inline void nm_keep_masks(const float* v, long stride, long lane_stride, int m, int n, uint32_t* keep) {
  constexpr int kG = kM > 0 ? kM : kMaxGroup;
  const int mm = kM > 0 ? kM : m;
  uint64_t key[kG][kLanes];
  uint64_t nth[kLanes];
  for (int i = 0; i < mm; ++i) {
SAT_NM_SIMD
    for (int lane = 0; lane < kLanes; ++lane) {
      key[i][lane] = (static_cast<uint64_t>(nm_rank_bits(v[lane * lane_stride + i * stride])) << 5) |
                     static_cast<uint64_t>(kMaxGroup - i);   // 1..16: keys are never 0
    }
  }
SAT_NM_SIMD
  for (int lane = 0; lane < kLanes; ++lane) nth[lane] = ~uint64_t{0};
  for (int t = 0; t < n; ++t) {
SAT_NM_SIMD
    for (int lane = 0; lane < kLanes; ++lane) {
      uint64_t best = 0;
      for (int i = 0; i < mm; ++i) {
        const uint64_t ki = key[i][lane];
        best = (ki < nth[lane] && ki > best) ? ki : best;
      }
      nth[lane] = best;                        // after pass t: the (t+1)-th largest key
    }
  }
SAT_NM_SIMD
  for (int lane = 0; lane < kLanes; ++lane) {
    uint32_t k = 0;
    for (int i = 0; i < mm; ++i) k |= static_cast<uint32_t>(key[i][lane] >= nth[lane]) << i;
    keep[lane] = n >= mm ? (mm >= 32 ? ~0u : (1u << mm) - 1) : k;
  }
}

// The kept in-group indices, ascending, from a keep mask with n bits set.
inline void nm_indices_of(uint32_t keep, int n, uint8_t* idx) {
  for (int j = 0; j < n; ++j) {
    idx[j] = static_cast<uint8_t>(std::countr_zero(keep));
    keep &= keep - 1;
  }
}

// Top-N of one group of M values v[0], v[stride], ..., v[(m-1)*stride]: writes the kept in-group
// indices to idx[0..n) in ascending order (rule: nm_keep_masks).
template <int kM = 0>
inline void nm_select_group(const float* v, long stride, int m, int n, uint8_t* idx) {
  uint32_t keep;
  nm_keep_masks<kM, 1>(v, stride, 0, m, n, &keep);
  nm_indices_of(keep, std::min(n, kM > 0 ? kM : m), idx);
}

// Keep-mask (1 = kept) of W[cout][k], row-major, pruned n:m along `axis`. Shapes must divide by m.
std::vector<uint8_t> nm_mask(const float* w, int64_t cout, int64_t k, NM nm, Axis axis);

// W with pruned entries set to zero (selection on the FP32 values).
std::vector<float> nm_prune(const float* w, int64_t cout, int64_t k, NM nm, Axis axis);

// Compressed N:M weights. Values are BF16 numbers (rounded to nearest even from the FP32 masters);
// the host holds them in FP32 so its kernels read them without conversion, and nm_values_bf16
// gives the 16-bit device form. The matrix is cut into "lines" along the pruned axis: for Axis::K a line
// is a row of W (cout lines of length k); for Axis::Cout a line is a column of W (k lines of length
// cout). Line l holds len/m groups of n entries each; entry (l, g, j) is at [(l * groups + g) * n + j]
// in both arrays. Indices are in-group (0..m-1), ascending within a group.
struct NMCompressed {
  NM nm;
  Axis axis = Axis::K;
  int64_t cout = 0, k = 0;           // dense shape [cout][k]
  std::vector<float> values;
  std::vector<uint8_t> index;

  int64_t lines() const { return axis == Axis::K ? cout : k; }
  int64_t line_length() const { return axis == Axis::K ? k : cout; }
  int64_t groups() const { return line_length() / nm.m; }
  int64_t nnz() const { return static_cast<int64_t>(values.size()); }
};

// Selects on the FP32 values, stores the kept values rounded to BF16 (unrounded only under
// Numerics::fp32, for gradient checks).
NMCompressed nm_compress(const float* w, int64_t cout, int64_t k, NM nm, Axis axis);
// Writes the dense [cout][k] matrix (zeros where pruned) as FP32.
void nm_decompress(const NMCompressed& c, float* w);
// Keep-mask [cout][k] of a compressed matrix.
std::vector<uint8_t> nm_mask_of(const NMCompressed& c);

// Device/file form of the values: 16-bit BF16.
std::vector<bf16> nm_values_bf16(const NMCompressed& c);
// Device/file form of the indices: 4 bits each, two per byte, entry e in byte e/2, low nibble first.
std::vector<uint8_t> nm_pack_indices(const std::vector<uint8_t>& index);
std::vector<uint8_t> nm_unpack_indices(const std::vector<uint8_t>& packed, int64_t count);

// Whether a [cout][k] weight can be pruned n:m along both axes; if not, why (for the summary).
// Returns an empty string when it can.
std::string nm_dense_reason(int64_t cout, int64_t k, NM nm);

}  // namespace sat
