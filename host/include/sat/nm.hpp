#pragma once
// The N:M core: settings, top-N selection, masks along either axis, and the compressed format.
// The selection rule itself is in nm_select.hpp, which every backend (CPU, HLS, CUDA) compiles, so
// all pick the same mask. Format and tie rule: docs/nm-format.md.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sat/bf16.hpp"
#include "sat/arch/nm_select.hpp"

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
