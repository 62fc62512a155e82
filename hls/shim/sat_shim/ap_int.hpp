#pragma once
// A small stand-in for Xilinx's <ap_int.h>, used only where the Vitis HLS headers are absent (g++
// C-simulation on a machine without Vitis). It provides the subset of ap_uint<W> the SAT kernel
// uses: construction from and conversion to integers, bit-range reads and writes at any position
// (range(hi, lo) with to_uint()/to_uint64() and assignment), and equality. Widths up to 1024 bits;
// arithmetic on wide values is deliberately not provided (the kernel never does it). Storage is
// little-endian 64-bit limbs, so bit b lives in limb b / 64.
#include <cstdint>

namespace sat_shim {

template <int W>
class ap_uint {
  static_assert(W >= 1 && W <= 1024, "ap_uint shim: width must be 1..1024");
  static constexpr int kLimbs = (W + 63) / 64;

 public:
  ap_uint() = default;
  ap_uint(uint64_t v) {  // NOLINT: implicit like the real type
    limb_[0] = v;
    mask_top();
  }

  // Bits [lo, hi] (inclusive, hi >= lo, hi - lo < 64) as an unsigned integer.
  uint64_t get_bits(int hi, int lo) const {
    const int n = hi - lo + 1;
    const int l = lo / 64, s = lo % 64;
    uint64_t v = limb_[l] >> s;
    if (s != 0 && l + 1 < kLimbs && s + n > 64) v |= limb_[l + 1] << (64 - s);
    return n == 64 ? v : v & ((uint64_t{1} << n) - 1);
  }
  void set_bits(int hi, int lo, uint64_t v) {
    for (int b = lo; b <= hi; ++b) {
      const uint64_t bit = uint64_t{1} << (b % 64);
      if ((v >> (b - lo)) & 1u) {
        limb_[b / 64] |= bit;
      } else {
        limb_[b / 64] &= ~bit;
      }
    }
  }

  class range_ref {
   public:
    range_ref(ap_uint* p, int hi, int lo) : p_(p), hi_(hi), lo_(lo) {}
    uint32_t to_uint() const { return static_cast<uint32_t>(p_->get_bits(hi_, lo_)); }
    uint64_t to_uint64() const { return p_->get_bits(hi_, lo_); }
    operator uint64_t() const { return to_uint64(); }  // NOLINT
    range_ref& operator=(uint64_t v) {
      p_->set_bits(hi_, lo_, v);
      return *this;
    }

   private:
    ap_uint* p_;
    int hi_, lo_;
  };
  class const_range_ref {
   public:
    const_range_ref(const ap_uint* p, int hi, int lo) : p_(p), hi_(hi), lo_(lo) {}
    uint32_t to_uint() const { return static_cast<uint32_t>(p_->get_bits(hi_, lo_)); }
    uint64_t to_uint64() const { return p_->get_bits(hi_, lo_); }
    operator uint64_t() const { return to_uint64(); }  // NOLINT

   private:
    const ap_uint* p_;
    int hi_, lo_;
  };

  range_ref range(int hi, int lo) { return range_ref(this, hi, lo); }
  const_range_ref range(int hi, int lo) const { return const_range_ref(this, hi, lo); }
  range_ref operator()(int hi, int lo) { return range(hi, lo); }
  const_range_ref operator()(int hi, int lo) const { return range(hi, lo); }
  bool operator[](int b) const { return (limb_[b / 64] >> (b % 64)) & 1u; }

  uint32_t to_uint() const { return static_cast<uint32_t>(limb_[0]); }
  uint64_t to_uint64() const { return limb_[0]; }
  operator uint64_t() const { return limb_[0]; }  // NOLINT: like the real type, for narrow widths

  bool operator==(const ap_uint& o) const {
    for (int i = 0; i < kLimbs; ++i)
      if (limb_[i] != o.limb_[i]) return false;
    return true;
  }
  bool operator!=(const ap_uint& o) const { return !(*this == o); }

 private:
  void mask_top() {
    if (W % 64 != 0) limb_[kLimbs - 1] &= (uint64_t{1} << (W % 64)) - 1;
  }
  uint64_t limb_[kLimbs] = {};
};

}  // namespace sat_shim

template <int W>
using ap_uint = sat_shim::ap_uint<W>;
