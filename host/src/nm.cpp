#include "sat/nm.hpp"

#include <algorithm>
#include <charconv>
#include <type_traits>

#include "cpu/simd.hpp"
#include "sat/error.hpp"
#include "sat/hw_config.hpp"
#include "sat/tensor.hpp"

namespace sat {

namespace {

std::string supported_list() {
  std::string s = "{";
  for (size_t i = 0; i < hw::kSupportedM.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(hw::kSupportedM[i]);
  }
  return s + "}";
}

void check_shape(int64_t cout, int64_t k, NM nm, Axis axis) {
  validate_nm(nm);
  if (cout <= 0 || k <= 0) {
    throw Error("N:M: weight shape [" + std::to_string(cout) + ", " + std::to_string(k) +
                "] is empty");
  }
  const int64_t len = axis == Axis::K ? k : cout;
  if (len % nm.m != 0) {
    throw Error(std::string("N:M ") + nm.str() + " along " + axis_name(axis) + ": " +
                axis_name(axis) + " = " + std::to_string(len) + " does not divide by M = " +
                std::to_string(nm.m));
  }
}

static_assert(*std::max_element(hw::kSupportedM.begin(), hw::kSupportedM.end()) <= kMaxGroup,
              "nm_select_group's key buffer must hold the largest supported M");
static_assert(*std::max_element(hw::kSupportedM.begin(), hw::kSupportedM.end()) <= (1 << hw::kIndexBits),
              "in-group indices must fit the index field");

}  // namespace

NM NM::parse(std::string_view text) {
  if (text == "dense") return NM{1, 1};
  const auto colon = text.find(':');
  NM nm;
  auto parse_int = [&](std::string_view part, int& out) {
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc() && p == part.data() + part.size() && !part.empty();
  };
  if (colon == std::string_view::npos || !parse_int(text.substr(0, colon), nm.n) ||
      !parse_int(text.substr(colon + 1), nm.m)) {
    throw Error("N:M setting '" + std::string(text) + "' is not of the form N:M (e.g. 2:8) or 'dense'");
  }
  validate_nm(nm);
  return nm;
}

void validate_nm(NM nm) {
  if (nm.m < 1 || nm.n < 1 || nm.n > nm.m) {
    throw Error("N:M " + nm.str() + ": need 1 <= N <= M");
  }
  if (nm.dense()) return;
  if (std::find(hw::kSupportedM.begin(), hw::kSupportedM.end(), nm.m) == hw::kSupportedM.end()) {
    throw Error("N:M " + nm.str() + ": M = " + std::to_string(nm.m) +
                " is not in the supported set " + supported_list());
  }
}

const char* axis_name(Axis a) { return a == Axis::K ? "K" : "Cout"; }

std::vector<uint8_t> nm_mask(const float* w, int64_t cout, int64_t k, NM nm, Axis axis) {
  return nm_mask_of(nm_compress(w, cout, k, nm, axis));
}

std::vector<float> nm_prune(const float* w, int64_t cout, int64_t k, NM nm, Axis axis) {
  const auto mask = nm_mask(w, cout, k, nm, axis);
  std::vector<float> out(mask.size());
  for (size_t i = 0; i < mask.size(); ++i) out[i] = mask[i] ? w[i] : 0.0f;
  return out;
}

NMCompressed nm_compress(const float* w, int64_t cout, int64_t k, NM nm, Axis axis) {
  check_shape(cout, k, nm, axis);
  NMCompressed c;
  c.nm = nm;
  c.axis = axis;
  c.cout = cout;
  c.k = k;
  const int64_t count = c.lines(), groups = c.groups();
  c.values.resize(static_cast<size_t>(count * groups * nm.n));
  c.index.resize(c.values.size());
  const bool round = numerics() == Numerics::bf16;
  const bool along_k = axis == Axis::K;
  // Blocks of 16 lines (the selection's SIMD lanes), split over the threads; each block is
  // selected by the SIMD path chosen at run time (cpu/simd.cpp).
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  float* const values = c.values.data();
  uint8_t* const index = c.index.data();
#pragma omp parallel for schedule(static) if (count * groups * nm.m > 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    cpu::simd::nm_select_lines(w, cout, k, nm.n, nm.m, along_k, round, b * kBlock,
                               std::min(count, (b + 1) * kBlock), values, index);
  }
  return c;
}

void nm_decompress(const NMCompressed& c, float* w) {
  std::fill(w, w + c.cout * c.k, 0.0f);
  const int64_t groups = c.groups();
  for (int64_t l = 0; l < c.lines(); ++l) {
    for (int64_t g = 0; g < groups; ++g) {
      for (int j = 0; j < c.nm.n; ++j) {
        const int64_t e = (l * groups + g) * c.nm.n;
        const int64_t pos = g * c.nm.m + c.index[e + j];
        w[c.axis == Axis::K ? l * c.k + pos : pos * c.k + l] = c.values[e + j];
      }
    }
  }
}

std::vector<uint8_t> nm_mask_of(const NMCompressed& c) {
  std::vector<uint8_t> mask(static_cast<size_t>(c.cout * c.k), 0);
  const int64_t groups = c.groups();
  for (int64_t l = 0; l < c.lines(); ++l) {
    for (int64_t g = 0; g < groups; ++g) {
      for (int j = 0; j < c.nm.n; ++j) {
        const int64_t pos = g * c.nm.m + c.index[(l * groups + g) * c.nm.n + j];
        mask[c.axis == Axis::K ? l * c.k + pos : pos * c.k + l] = 1;
      }
    }
  }
  return mask;
}

std::vector<bf16> nm_values_bf16(const NMCompressed& c) {
  std::vector<bf16> out(c.values.size());
  to_bf16(c.values.data(), out.data(), out.size());
  return out;
}

std::vector<uint8_t> nm_pack_indices(const std::vector<uint8_t>& index) {
  std::vector<uint8_t> packed((index.size() + 1) / 2, 0);
  for (size_t e = 0; e < index.size(); ++e) {
    if (index[e] > 15) throw Error("N:M index " + std::to_string(index[e]) + " does not fit 4 bits");
    packed[e / 2] |= static_cast<uint8_t>(index[e] << (4 * (e % 2)));
  }
  return packed;
}

std::vector<uint8_t> nm_unpack_indices(const std::vector<uint8_t>& packed, int64_t count) {
  if (count < 0 || static_cast<size_t>((count + 1) / 2) > packed.size()) {
    throw Error("N:M packed indices: " + std::to_string(packed.size()) + " bytes cannot hold " +
                std::to_string(count) + " indices");
  }
  std::vector<uint8_t> index(static_cast<size_t>(count));
  for (int64_t e = 0; e < count; ++e) index[e] = (packed[e / 2] >> (4 * (e % 2))) & 0xf;
  return index;
}

std::string nm_dense_reason(int64_t cout, int64_t k, NM nm) {
  if (nm.dense()) return "";
  std::string why;
  if (k % nm.m != 0) why += "K " + std::to_string(k) + " % " + std::to_string(nm.m) + " != 0";
  if (cout % nm.m != 0) {
    why += (why.empty() ? "" : ", ") + std::string("Cout ") + std::to_string(cout) + " % " +
           std::to_string(nm.m) + " != 0";
  }
  return why;
}

}  // namespace sat
