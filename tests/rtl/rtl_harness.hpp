#pragma once
// What the RTL unit tests share: instructions for sat::hls::run_kernel on fake DRAM, the flat-port
// bit helpers for Verilated models, BF16 operand flavours and the optional waveform.
//
// Waveforms: `--trace FILE` on the command line, or SAT_RTL_TRACE=FILE, writes an FST of the first
// SAT_RTL_TRACE_CYCLES cycles (default 100,000; 0: all) of the Verilated block under test.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sat/arch/bf16_bits.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat_hls/kernel.hpp"
#include "verilated.h"
#include "verilated_fst_c.h"

namespace sat::rtl_test {

// ---- the C-model: programs on fake DRAM (channel 0) ------------------------------------------------

inline isa::Insn mk(isa::Opcode op, uint8_t flags, std::initializer_list<std::pair<int, uint32_t>> fields,
                    uint8_t wait, uint8_t signal) {
  isa::Insn in = isa::make_insn(op, flags);
  for (const auto& [f, v] : fields) in.w[f] = v;
  isa::set_wait(in, wait);
  isa::set_signal(in, signal);
  return in;
}

// Halfword DRAM of the four channels; data goes to channel 0, allocated in 16-byte steps.
class Dram {
 public:
  void reset(size_t halfwords) {
    for (auto& c : ch_)
      if (c.size() < halfwords) c.assign(halfwords, 0);
    used_ = 0;
  }
  uint64_t alloc(uint64_t halfwords) {
    const uint64_t off = used_;
    used_ += (halfwords + 7) & ~uint64_t{7};
    if (used_ > ch_[0].size()) {
      std::fprintf(stderr, "test DRAM too small\n");
      std::abort();
    }
    return off;
  }
  template <typename T>
  uint32_t put(const std::vector<T>& v) {   // 16-bit elements
    const uint64_t off = alloc(v.size());
    for (size_t i = 0; i < v.size(); ++i) ch_[0][off + i] = static_cast<uint16_t>(v[i]);
    return isa::make_addr(0, static_cast<uint32_t>(off));
  }
  uint32_t put_f32(const std::vector<uint32_t>& v) {
    const uint64_t off = alloc(2 * v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      ch_[0][off + 2 * i] = static_cast<uint16_t>(v[i]);
      ch_[0][off + 2 * i + 1] = static_cast<uint16_t>(v[i] >> 16);
    }
    return isa::make_addr(0, static_cast<uint32_t>(off));
  }
  uint16_t at(uint64_t off) const { return ch_[0][off]; }
  uint32_t f32_at(uint64_t off) const { return ch_[0][off] | uint32_t{ch_[0][off + 1]} << 16; }
  // Runs the program; false (after printing the status) when the kernel reports an error.
  bool run(const std::vector<isa::Insn>& prog) {
    uint16_t* p[arch::kDdrChannels];
    uint64_t n[arch::kDdrChannels];
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      p[c] = ch_[c].data();
      n[c] = ch_[c].size();
    }
    const auto status = hls::run_kernel(prog.data(), prog.size(), p, n);
    if (status[0] != isa::STATUS_OK) {
      std::printf("kernel status %u %u %u %u\n", status[0], status[1], status[2], status[3]);
      return false;
    }
    return true;
  }

 private:
  std::vector<uint16_t> ch_[arch::kDdrChannels];
  uint64_t used_ = 0;
};

// ---- flat ports ----------------------------------------------------------------------------------

// Writes / reads `width` (<= 32) bits at bit `pos` of a Verilated port (VlWide or an integer).
template <std::size_t N>
inline void put_bits(VlWide<N>& w, int pos, int width, uint32_t v) {
  for (int b = 0; b < width; ++b) {
    const int at = pos + b;
    uint32_t& word = w[at / 32];
    word = (word & ~(1u << (at % 32))) | (((v >> b) & 1u) << (at % 32));
  }
}
template <typename T>
inline void put_bits(T& w, int pos, int width, uint32_t v) {
  const T mask = static_cast<T>(((width >= 32 ? ~uint64_t{0} >> 32 : (uint64_t{1} << width) - 1)) << pos);
  w = static_cast<T>((w & ~mask) | ((static_cast<T>(v) << pos) & mask));
}
template <std::size_t N>
inline uint32_t get_bits(const VlWide<N>& w, int pos, int width) {
  uint32_t v = 0;
  for (int b = 0; b < width; ++b) v |= ((w[(pos + b) / 32] >> ((pos + b) % 32)) & 1u) << b;
  return v;
}
template <typename T>
inline uint32_t get_bits(const T& w, int pos, int width) {
  return static_cast<uint32_t>((static_cast<uint64_t>(w) >> pos) & ((uint64_t{1} << width) - 1));
}
// Whole 16- or 32-bit fields at aligned positions, the common case, without the bit loop.
template <std::size_t N>
inline void put16(VlWide<N>& w, int index, uint16_t v) {
  uint32_t& word = w[index / 2];
  const int sh = 16 * (index % 2);
  word = (word & ~(0xffffu << sh)) | (uint32_t{v} << sh);
}
template <typename T>
inline void put16(T& w, int index, uint16_t v) { put_bits(w, 16 * index, 16, v); }
template <std::size_t N>
inline void put32(VlWide<N>& w, int index, uint32_t v) { w[index] = v; }
template <typename T>
inline void put32(T& w, int index, uint32_t v) { put_bits(w, 32 * index, 32, v); }
template <std::size_t N>
inline uint32_t get32(const VlWide<N>& w, int index) { return w[index]; }
template <typename T>
inline uint32_t get32(const T& w, int index) { return get_bits(w, 32 * index, 32); }

// ---- options -------------------------------------------------------------------------------------

// `flag N` on the command line, else the environment variable `env`, else `dflt`.
inline uint64_t arg_or_env(int argc, char** argv, const char* flag, const char* env, uint64_t dflt) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  const char* e = std::getenv(env);
  return e ? std::strtoull(e, nullptr, 10) : dflt;
}

// ---- waveform ------------------------------------------------------------------------------------

template <typename Dut>
class Wave {
 public:
  Wave(Dut& dut, int argc, char** argv) {
    const char* path = std::getenv("SAT_RTL_TRACE");
    for (int i = 1; i + 1 < argc; ++i)
      if (std::strcmp(argv[i], "--trace") == 0) path = argv[i + 1];
    if (path == nullptr || *path == 0) return;
    const char* lim = std::getenv("SAT_RTL_TRACE_CYCLES");
    limit_ = lim ? std::strtoull(lim, nullptr, 10) : 100000;
    Verilated::traceEverOn(true);
    fst_ = std::make_unique<VerilatedFstC>();
    dut.trace(fst_.get(), 99);
    fst_->open(path);
    std::printf("waveform: %s (first %llu cycles; SAT_RTL_TRACE_CYCLES)\n", path, (unsigned long long)limit_);
  }
  ~Wave() {
    if (fst_) fst_->close();
  }
  // Call after each eval; t counts half cycles.
  void dump(uint64_t t) {
    if (fst_ && (limit_ == 0 || t < 2 * limit_)) fst_->dump(t);
  }

 private:
  std::unique_ptr<VerilatedFstC> fst_;
  uint64_t limit_ = 0;
};

// ---- operands ------------------------------------------------------------------------------------

inline bool is_nan(uint32_t v) { return (v & 0x7f800000u) == 0x7f800000u && (v & 0x007fffffu) != 0; }

// BF16 operand flavours, as the PE test's: the results cover normal values, subnormals, zeros,
// infinities and NaNs.
enum Flavour { kNormal, kBits, kSpecial, kCancel, kOverflow, kUnderflow, kNarrow, kZeros, kMixed, kFlavours };
inline const char* const kFlavourName[kFlavours] = {"normal",    "bits",   "special", "cancel", "overflow",
                                                    "underflow", "narrow", "zeros",   "mixed"};

struct Gen {
  std::mt19937_64 rng;
  uint32_t special_odds = 4;  // kSpecial: one element in special_odds is a special value
  explicit Gen(uint64_t seed) : rng(seed) {}
  uint32_t u(uint32_t n) { return static_cast<uint32_t>(rng() % n); }
  uint16_t sign() { return static_cast<uint16_t>(u(2) << 15); }
  uint16_t with_exp(uint32_t e) { return static_cast<uint16_t>(sign() | (e << 7) | u(128)); }
  uint16_t normal(float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    return f32_to_bf16_bits(d(rng));
  }
  uint16_t special() {
    switch (u(12)) {
      case 0: return sign();                                                // +-0
      case 1: return static_cast<uint16_t>(sign() | (1 + u(127)));         // BF16 subnormal
      case 2: return static_cast<uint16_t>(sign() | 0x7f80);                // +-inf
      case 3: return static_cast<uint16_t>(sign() | 0x7fc0 | u(64));        // quiet NaN
      case 4: return static_cast<uint16_t>(sign() | 0x7f80 | (1 + u(63)));  // signalling NaN
      case 5: return static_cast<uint16_t>(sign() | 0x7f7f);                // largest finite
      case 6: return static_cast<uint16_t>(sign() | 0x0080);                // smallest normal
      case 7: return static_cast<uint16_t>(sign() | 0x3f80);                // +-1
      default: return normal(1.0f);
    }
  }
  uint16_t element(Flavour f) {
    switch (f) {
      case kNormal:
      case kCancel: return normal(1.0f);
      case kBits: {  // every exponent; exponents near the top (and inf/NaN) thinned
        uint16_t v = static_cast<uint16_t>(u(65536));
        if ((v & 0x7f80) >= (191 << 7) && u(4) != 0) v = static_cast<uint16_t>(v & 0xbfff);
        return v;
      }
      case kSpecial: return u(special_odds) == 0 ? special() : normal(1.0f);
      case kOverflow: return u(3) == 0 ? with_exp(190 + u(65)) : normal(1.0f);
      case kUnderflow: return u(16) == 0 ? element(kZeros) : with_exp(1 + u(110));
      case kNarrow: return with_exp(125 + u(5));
      case kZeros: {  // signed zeros, BF16 subnormals (read as zeros), now and then a tiny or unit value
        const uint32_t r = u(32);
        if (r == 0) return with_exp(1 + u(3));
        if (r == 1) return static_cast<uint16_t>(sign() | 0x3f80);
        return r < 20 ? sign() : static_cast<uint16_t>(sign() | (1 + u(127)));
      }
      default: return element(static_cast<Flavour>(u(kMixed)));
    }
  }
};

// Result classes, for the printout.
enum { kClsNan, kClsInf, kClsPosZero, kClsNegZero, kClsSubnormal, kClsNormal, kClasses };
inline int result_class(uint32_t w) {
  const uint32_t e = w & 0x7f800000u, m = w & 0x007fffffu;
  if (e == 0x7f800000u) return m ? kClsNan : kClsInf;
  if (e == 0) return m ? kClsSubnormal : (w >> 31 ? kClsNegZero : kClsPosZero);
  return kClsNormal;
}

}  // namespace sat::rtl_test
