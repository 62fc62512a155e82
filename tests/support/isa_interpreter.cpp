// The tests' reference interpreter of the instruction set (isa_interpreter.hpp): one function per
// instruction, each the semantics of docs/isa.md §5 over the channel images and the operand banks.
// Written from the document, not from hls/, so that a misreading shared by the kernel and the
// scheduler still shows up as a difference with the CPU layers.
#include "isa_interpreter.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "sat/arch/access.hpp"
#include "sat/bf16.hpp"
#include "sat/error.hpp"

namespace sat::test {

using namespace sat::isa;

// FP32 and int32 elements are two halfwords, low half first: the host's byte order must be too.
static_assert(std::endian::native == std::endian::little, "the DRAM images assume a little-endian host");
static_assert(arch::kPeLanes == 8, "gemm() spells out the eight-lane reduction tree of docs/isa.md");

namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Field checks: the kernel's BAD_FIELD, as an exception naming the field.
[[noreturn]] void bad_field(const char* field, int64_t value, const std::string& why) {
  throw Error(std::string("field '") + field + "' = " + std::to_string(value) + " " + why);
}
void check_range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    bad_field(field, v, "is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}
void check_setting(int64_t n, int64_t m) {
  if (!arch::supported_m(static_cast<int>(m))) bad_field("m", m, "is not a supported M");
  check_range("n", n, 1, m);
}

// A convolution or pooling window over an NHWC tensor: the fields c, h, w, kh_kw, stride_pad, oh,
// ow, which LD_CONV, ST_COL2IM and the pooling ops all list in this order from word `first`.
struct Window {
  int64_t c, h, w, kh, kw, stride, pad, oh, ow;
};
Window window(const Insn& in, int first) {
  const Window g{in[first], in[first + 1], in[first + 2], lo16(in[first + 3]), hi16(in[first + 3]),
                 lo16(in[first + 4]), hi16(in[first + 4]), in[first + 5], in[first + 6]};
  // Zero sizes would divide by zero below; the kernel refuses them as bad fields too.
  if (g.kh < 1 || g.kw < 1) bad_field("kh_kw", in[first + 3], "has a zero kernel size");
  if (g.stride < 1) bad_field("stride_pad", in[first + 4], "has a zero stride");
  if (g.oh < 1) bad_field("oh", g.oh, "is zero");
  if (g.ow < 1) bad_field("ow", g.ow, "is zero");
  return g;
}

// NHWC element index of im2col position (p, k), or -1 in the padding and for k past c*kh*kw (a K
// tile may be padded).
// `flipped`: LD_CONV b2, k = (ky*kw + kx)*c + ci with the window read from its far corner.
int64_t im2col(const Window& g, int64_t p, int64_t k, bool flipped = false) {
  if (k >= g.c * g.kh * g.kw) return -1;
  const int64_t b = p / (g.oh * g.ow), oy = p / g.ow % g.oh, ox = p % g.ow;
  const int64_t tap = flipped ? k / g.c : k % (g.kh * g.kw);
  const int64_t ci = flipped ? k % g.c : k / (g.kh * g.kw);
  const int64_t ky = flipped ? g.kh - 1 - tap / g.kw : tap / g.kw;
  const int64_t kx = flipped ? g.kw - 1 - tap % g.kw : tap % g.kw;
  const int64_t iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return -1;
  return ((b * g.h + iy) * g.w + ix) * g.c + ci;
}

// The N:M selection rule of docs/nm-format.md, written out: element i of the group is kept when
// fewer than n others beat it; j beats i when its magnitude (bit pattern, so a NaN ranks highest)
// is larger, or equal with j < i. Bit i of the result is set for a kept element.
uint32_t keep_mask(const float* v, int64_t m, int64_t n) {
  uint32_t keep = 0;
  for (int64_t i = 0; i < m; ++i) {
    const uint32_t ri = f32_bits(v[i]) & 0x7fffffffu;
    int64_t beaten = 0;
    for (int64_t j = 0; j < m; ++j) {
      const uint32_t rj = f32_bits(v[j]) & 0x7fffffffu;
      beaten += j != i && (rj > ri || (rj == ri && j < i));
    }
    if (beaten < n) keep |= 1u << i;
  }
  return keep;
}

// GELU and its derivative, in double as the CPU layer (host/src/layers/gelu.cpp).
double gelu(double x, bool tanh_form) {
  if (tanh_form) return 0.5 * x * (1.0 + std::tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1.0 + std::erf(x / 1.41421356237309504880));
}
double gelu_derivative(double x, bool tanh_form) {
  if (tanh_form) {
    const double t = std::tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x));
    const double du = 0.79788456080286535588 * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
  }
  return 0.5 * (1.0 + std::erf(x / 1.41421356237309504880)) + x * 0.39894228040143267794 * std::exp(-0.5 * x * x);
}

// Max pooling's winner: strictly greater keeps the first maximum; a NaN wins so that divergence
// propagates (docs/isa.md, V_POOL).
bool beats(float v, float best) { return v > best || (std::isnan(v) && !std::isnan(best)); }

}  // namespace

IsaInterpreter::IsaInterpreter(const Program& program) : program_(program) {
  for (int c = 0; c < arch::kDdrChannels; ++c) dram_[static_cast<size_t>(c)].assign(program.map.channel_bytes[c], 0);
  for (Bank& b : banks_) {
    b.a.assign(arch::kAbufElems, 0.0f);
    b.b.assign(arch::kBbufElems, 0.0f);
    b.b_index.assign(arch::kBbufElems, 0);
    b.c.assign(arch::kCbufElems, 0.0f);
  }
}

// ---- DRAM ------------------------------------------------------------------------------------------

const uint8_t* IsaInterpreter::at(uint32_t addr, int64_t byte_off, int64_t count) const {
  const uint32_t ch = addr_channel(addr);
  const std::vector<uint8_t>& img = dram_[ch];
  const int64_t off = int64_t{addr_offset(addr)} * 2 + byte_off;
  if (byte_off < 0 || count < 0 || off + count > static_cast<int64_t>(img.size())) {
    throw Error("access of " + std::to_string(count) + " bytes at channel " + std::to_string(ch) + " byte " +
                hex(static_cast<uint64_t>(off)) + " is past the channel's " + std::to_string(img.size()) +
                " bytes");
  }
  return img.data() + off;
}
uint8_t* IsaInterpreter::at(uint32_t addr, int64_t byte_off, int64_t count) {
  return const_cast<uint8_t*>(std::as_const(*this).at(addr, byte_off, count));
}

uint16_t IsaInterpreter::bf16_bits(uint32_t addr, int64_t i) const {
  uint16_t b;
  std::memcpy(&b, at(addr, i * 2, 2), 2);
  return b;
}
void IsaInterpreter::set_bf16_bits(uint32_t addr, int64_t i, uint16_t bits) {
  std::memcpy(at(addr, i * 2, 2), &bits, 2);
}

float IsaInterpreter::get_bf16(uint32_t addr, int64_t i) const { return bf16_bits_to_f32(bf16_bits(addr, i)); }
void IsaInterpreter::set_bf16(uint32_t addr, int64_t i, float v) { set_bf16_bits(addr, i, f32_to_bf16_bits(v)); }

float IsaInterpreter::get_f32(uint32_t addr, int64_t i) const {
  float v;
  std::memcpy(&v, at(addr, i * 4, 4), 4);
  return v;
}
void IsaInterpreter::set_f32(uint32_t addr, int64_t i, float v) { std::memcpy(at(addr, i * 4, 4), &v, 4); }

int32_t IsaInterpreter::get_i32(uint32_t addr, int64_t i) const {
  int32_t v;
  std::memcpy(&v, at(addr, i * 4, 4), 4);
  return v;
}
void IsaInterpreter::set_i32(uint32_t addr, int64_t i, int32_t v) { std::memcpy(at(addr, i * 4, 4), &v, 4); }

std::span<uint8_t> IsaInterpreter::bytes(uint32_t addr, size_t count) {
  return {at(addr, 0, static_cast<int64_t>(count)), count};
}
std::span<const uint8_t> IsaInterpreter::bytes(uint32_t addr, size_t count) const {
  return {at(addr, 0, static_cast<int64_t>(count)), count};
}

uint32_t IsaInterpreter::region_addr(int region) const {
  return program_.map.regions.at(static_cast<size_t>(region)).addr();
}

// Packed N:M indices: entry E is nibble E of the region, byte E/2, low nibble first.
uint32_t IsaInterpreter::nibble(uint32_t addr, int64_t entry) const {
  const uint8_t byte = *at(addr, entry / 2, 1);
  return entry % 2 ? byte >> 4 : byte & 15u;
}
void IsaInterpreter::set_nibble(uint32_t addr, int64_t entry, uint32_t v) {
  uint8_t* byte = at(addr, entry / 2, 1);
  *byte = static_cast<uint8_t>(entry % 2 ? (*byte & 0x0f) | (v << 4) : (*byte & 0xf0) | (v & 15u));
}

// ---- Running -----------------------------------------------------------------------------------

void IsaInterpreter::run() {
  if (!program_.prologue.empty()) run(program_.prologue);
  run(program_.insns);
}

void IsaInterpreter::run(std::span<const Insn> insns) {
  for (size_t j = 0; j < insns.size(); ++j) {
    const Insn& in = insns[j];
    if (in.opcode() == OP_FINISH) return;   // fetch stops here
    try {
      step(in);
    } catch (const Error& e) {
      const char* name = opcode_name(in.opcode());
      throw Error("IsaInterpreter: instruction " + std::to_string(j) + " (" +
                  (opcode_unit(in.opcode()) < 0 ? "opcode " + hex(in.opcode()) : std::string(name)) + "): " + e.what());
    }
  }
  throw Error("IsaInterpreter: the stream of " + std::to_string(insns.size()) + " instructions ends without FINISH");
}

void IsaInterpreter::step(const Insn& in) {
  const bool b0 = in.flag(0), b1 = in.flag(1), b2 = in.flag(2);   // meanings per opcode
  switch (in.opcode()) {
    case OP_LD_2D: load_2d(in); break;
    case OP_LD_CONV: load_conv(in); break;
    case OP_LD_SPW: load_spw(in); break;
    case OP_GEMM: gemm(in); break;
    case OP_ST_2D: store_2d(in); break;
    case OP_ST_COL2IM: store_col2im(in); break;
    case OP_V_FILL: {
      const float v = f32_from_bits(in[f_V_FILL::value]);
      for (int64_t i = 0; i < in[f_V_FILL::count]; ++i)
        b0 ? set_f32(in[f_V_FILL::y], i, v) : set_bf16(in[f_V_FILL::y], i, v);
      break;
    }
    case OP_V_CONVERT:
      for (int64_t i = 0; i < in[f_V_CONVERT::count]; ++i)
        set_bf16(in[f_V_CONVERT::y], i, get_f32(in[f_V_CONVERT::x], i));
      break;
    case OP_V_ADD:
      for (int64_t i = 0; i < in[f_V_ADD::count]; ++i) {
        const float a = b0 ? get_f32(in[f_V_ADD::a], i) : get_bf16(in[f_V_ADD::a], i);
        const float b = b1 ? get_f32(in[f_V_ADD::b], i) : get_bf16(in[f_V_ADD::b], i);
        b2 ? set_f32(in[f_V_ADD::y], i, a + b) : set_bf16(in[f_V_ADD::y], i, a + b);
      }
      break;
    case OP_V_BCAST_ADD: {
      const int64_t cols = in[f_V_BCAST_ADD::cols];
      for (int64_t r = 0; r < in[f_V_BCAST_ADD::rows]; ++r)
        for (int64_t c = 0; c < cols; ++c)
          set_bf16(in[f_V_BCAST_ADD::y], r * cols + c,
                   get_bf16(in[f_V_BCAST_ADD::x], r * cols + c) + get_f32(in[f_V_BCAST_ADD::p], c));
      break;
    }
    case OP_V_COLSUM: {
      // FP32, rows in order (the CPU's bias gradient).
      const int64_t cols = in[f_V_COLSUM::cols];
      for (int64_t c = 0; c < cols; ++c) {
        float s = b0 ? get_f32(in[f_V_COLSUM::y], c) : 0.0f;
        for (int64_t r = 0; r < in[f_V_COLSUM::rows]; ++r) s += get_bf16(in[f_V_COLSUM::x], r * cols + c);
        set_f32(in[f_V_COLSUM::y], c, s);
      }
      break;
    }
    case OP_V_RELU:
    case OP_V_RELU_BWD: {
      // Positive on the BF16 bits: sign clear and not zero (a positive NaN passes); the value passed
      // on is copied bit for bit.
      const bool bwd = in.opcode() == OP_V_RELU_BWD;
      const uint32_t x = bwd ? in[f_V_RELU_BWD::x] : in[f_V_RELU::x], src = bwd ? in[f_V_RELU_BWD::dy] : x;
      const uint32_t y = bwd ? in[f_V_RELU_BWD::dx] : in[f_V_RELU::y];
      for (int64_t i = 0; i < (bwd ? in[f_V_RELU_BWD::count] : in[f_V_RELU::count]); ++i) {
        const uint16_t xb = bf16_bits(x, i);
        set_bf16_bits(y, i, !(xb & 0x8000u) && (xb & 0x7fffu) ? bf16_bits(src, i) : uint16_t{0});
      }
      break;
    }
    case OP_V_GELU:
      for (int64_t i = 0; i < in[f_V_GELU::count]; ++i)
        set_bf16(in[f_V_GELU::y], i, static_cast<float>(gelu(get_bf16(in[f_V_GELU::x], i), b0)));
      break;
    case OP_V_GELU_BWD:
      for (int64_t i = 0; i < in[f_V_GELU_BWD::count]; ++i)
        set_bf16(in[f_V_GELU_BWD::dx], i,
                 static_cast<float>(double{get_bf16(in[f_V_GELU_BWD::dy], i)} *
                                    gelu_derivative(get_bf16(in[f_V_GELU_BWD::x], i), b0)));
      break;
    case OP_V_POOL: pool(in, false); break;
    case OP_V_POOL_BWD: pool(in, true); break;
    case OP_V_BN: batch_norm(in); break;
    case OP_V_BN_BWD: batch_norm_bwd(in); break;
    case OP_V_LN: layer_norm(in); break;
    case OP_V_LN_BWD: layer_norm_bwd(in); break;
    case OP_V_SOFTMAX: softmax(in); break;
    case OP_V_SOFTMAX_BWD: softmax_bwd(in); break;
    case OP_V_XENT: cross_entropy(in); break;
    case OP_V_PERMUTE: {
      const int64_t rows = in[f_V_PERMUTE::rows], cols = in[f_V_PERMUTE::cols];
      for (int64_t o = 0; o < in[f_V_PERMUTE::outer]; ++o)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            set_bf16_bits(in[f_V_PERMUTE::y], (o * cols + c) * rows + r,
                          bf16_bits(in[f_V_PERMUTE::x], (o * rows + r) * cols + c));
      break;
    }
    case OP_SGD: sgd(in); break;
    case OP_PGEN: pgen(in); break;
    default:
      throw Error("opcode " + hex(in.opcode()) + " is not in the instruction set");
  }
}

// ---- LOAD ------------------------------------------------------------------------------------------

void IsaInterpreter::load_2d(const Insn& in) {
  const bool to_b = in.flag(0);
  check_range("bank", in[f_LD_2D::bank], 0, 1);
  const int64_t rows = in[f_LD_2D::rows], cols = in[f_LD_2D::cols];
  check_range("rows", rows, 1, to_b ? arch::kMaxTileCols : arch::kMaxTileRows);
  check_range("cols", cols, 1, arch::kMaxTileK);
  const int64_t rs = in[f_LD_2D::row_stride], cs = in[f_LD_2D::col_stride];
  Bank& bank = banks_[in[f_LD_2D::bank]];
  std::vector<float>& buf = to_b ? bank.b : bank.a;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      buf[static_cast<size_t>(r * cols + c)] = get_bf16(in[f_LD_2D::addr], r * rs + c * cs);
}

void IsaInterpreter::load_conv(const Insn& in) {
  const bool to_b = in.flag(0), transposed = in.flag(1), flipped = in.flag(2);
  if (in.flags() & ~15u) bad_field("header", in.flags(), "has flag bits above b3 set");
  // b3: the tile comes from the patch the buffer holds, which must cover this tile's (the contract
  // the scheduler keeps: an earlier LD_CONV read it and the tensor is unchanged since); the buffer
  // keeps holding that patch.
  const isa::ConvPatch pt = isa::conv_patch(in, arch::kConvPatchElems);
  const HeldPatch now{pt.fits, in[f_LD_CONV::addr], pt};
  if (in.flag(3) && pt.fits) {
    const HeldPatch& h = held_patch_;
    if (!h.valid || h.addr != now.addr || !h.extent.covers(pt))
      bad_field("header", in.flags(), "b3 names a patch the buffer does not hold");
  }
  if (pt.fits && !in.flag(3)) held_patch_ = now;
  check_range("bank", in[f_LD_CONV::bank], 0, 1);
  const int64_t rows = in[f_LD_CONV::rows], cols = in[f_LD_CONV::cols];
  check_range("rows", rows, 1, to_b ? arch::kMaxTileCols : arch::kMaxTileRows);
  check_range("cols", cols, 1, arch::kMaxTileK);
  const Window g = window(in, f_LD_CONV::c);
  const int64_t p0 = in[f_LD_CONV::p0], k0 = in[f_LD_CONV::k0];
  Bank& bank = banks_[in[f_LD_CONV::bank]];
  std::vector<float>& buf = to_b ? bank.b : bank.a;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t e = transposed ? im2col(g, p0 + c, k0 + r, flipped) : im2col(g, p0 + r, k0 + c, flipped);
      buf[static_cast<size_t>(r * cols + c)] = e < 0 ? 0.0f : get_bf16(in[f_LD_CONV::addr], e);
    }
  }
}

void IsaInterpreter::load_spw(const Insn& in) {
  const bool fly = in.flag(0), along_cout = in.flag(1);
  if (!fly && in.flags() != 0) bad_field("header", in.flags(), "has flag bits set without b0");
  check_range("bank", in[f_LD_SPW::bank], 0, 1);
  const int64_t rows = in[f_LD_SPW::rows], groups = in[f_LD_SPW::groups];
  const int64_t n = in[f_LD_SPW::n], m = in[f_LD_SPW::m];
  const int64_t l0 = in[f_LD_SPW::l0], g0 = in[f_LD_SPW::g0];
  check_setting(n, m);
  check_range("rows", rows, 1, arch::kMaxTileCols);
  check_range("groups", groups, 1, arch::kMaxTileK / m);
  Bank& bank = banks_[in[f_LD_SPW::bank]];
  const int64_t pitch = groups * n;
  if (!fly) {
    // Pre-generated: entry E = (l*line_groups + g)*n + e, value at val_addr + E, index nibble E.
    const int64_t lg = in[f_LD_SPW::line_groups];
    if (g0 + groups > lg) bad_field("groups", groups, "runs past line_groups " + std::to_string(lg));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t e = 0; e < n; ++e) {
          const int64_t entry = ((l0 + r) * lg + g0 + g) * n + e;
          const uint32_t idx = nibble(in[f_LD_SPW::idx_addr], entry);
          if (idx >= m) bad_field("idx_addr", entry, "entry holds index " + std::to_string(idx) + " >= m");
          bank.b[static_cast<size_t>(r * pitch + g * n + e)] = get_bf16(in[f_LD_SPW::val_addr], entry);
          bank.b_index[static_cast<size_t>(r * pitch + g * n + e)] = static_cast<uint8_t>(idx);
        }
    return;
  }
  // Selected on the fly from the FP32 master W[cout][k] (idx_addr holds k): line l, group g is
  // W[l][g*m + i] (W_F) or W[g*m + i][l] (W_B), ranked by the selection rule, kept ones in
  // ascending in-group order, values rounded to BF16.
  const int64_t k = in[f_LD_SPW::idx_addr];
  if (!along_cout && (g0 + groups) * m > k) {
    bad_field("groups", groups, "runs past the row of k = " + std::to_string(k));
  }
  if (along_cout && l0 + rows > k) bad_field("rows", rows, "runs past the row of k = " + std::to_string(k));
  float v[16];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t l = l0 + r, gg = g0 + g;
      for (int64_t i = 0; i < m; ++i)
        v[i] = get_f32(in[f_LD_SPW::val_addr], along_cout ? (gg * m + i) * k + l : l * k + gg * m + i);
      uint32_t keep = keep_mask(v, m, n);
      for (int64_t e = 0; e < n; ++e) {
        const int idx = std::countr_zero(keep);
        keep &= keep - 1;
        bank.b[static_cast<size_t>(r * pitch + g * n + e)] = round_bf16(v[idx]);
        bank.b_index[static_cast<size_t>(r * pitch + g * n + e)] = static_cast<uint8_t>(idx);
      }
    }
}

// ---- GEMM ------------------------------------------------------------------------------------------

// C[i][j] (+)= sum over line j's entries, each to lane e mod 8 in entry order, the lanes then
// reduced as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)): the PE array's FP32 order (docs/isa.md, GEMM).
void IsaInterpreter::gemm(const Insn& in) {
  const bool accumulate = in.flag(0), sparse = in.flag(1);
  check_range("a_bank", in[f_GEMM::a_bank], 0, 1);
  check_range("b_bank", in[f_GEMM::b_bank], 0, 1);
  check_range("c_bank", in[f_GEMM::c_bank], 0, 1);
  const int64_t mt = in[f_GEMM::mt], nt = in[f_GEMM::nt], kt = in[f_GEMM::kt];
  check_range("mt", mt, 1, arch::kMaxTileRows);
  check_range("nt", nt, 1, arch::kMaxTileCols);
  check_range("kt", kt, 1, arch::kMaxTileK);
  const int64_t n = in[f_GEMM::n], m = in[f_GEMM::m];
  if (sparse) {
    check_setting(n, m);
    if (kt % m) bad_field("kt", kt, "is not a multiple of m = " + std::to_string(m));
  }
  const std::vector<float>& a = banks_[in[f_GEMM::a_bank]].a;
  const Bank& bb = banks_[in[f_GEMM::b_bank]];
  std::vector<float>& c = banks_[in[f_GEMM::c_bank]].c;
  const int64_t entries = sparse ? kt / m * n : kt;   // per line; also the sparse B pitch
  for (int64_t i = 0; i < mt; ++i) {
    for (int64_t j = 0; j < nt; ++j) {
      float lane[8] = {};
      for (int64_t e = 0; e < entries; ++e) {
        const size_t be = static_cast<size_t>(j * entries + e);
        const int64_t ka = sparse ? e / n * m + bb.b_index[be] : e;
        lane[e % 8] += a[static_cast<size_t>(i * kt + ka)] * bb.b[be];   // BF16 x BF16: exact in FP32
      }
      const float sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
      float& out = c[static_cast<size_t>(i * nt + j)];
      out = accumulate ? out + sum : sum;
    }
  }
}

// ---- STORE -----------------------------------------------------------------------------------------

void IsaInterpreter::store_2d(const Insn& in) {
  const bool fp32 = in.flag(0), add = in.flag(1), bias = in.flag(2);
  if (add && !fp32) bad_field("header", in.flags(), "adds into DRAM (b1) without FP32 output (b0)");
  check_range("c_bank", in[f_ST_2D::c_bank], 0, 1);
  const int64_t rows = in[f_ST_2D::rows], cols = in[f_ST_2D::cols];
  check_range("rows", rows, 0, arch::kMaxTileRows);
  check_range("cols", cols, 0, arch::kMaxTileCols);
  const int64_t rs = in[f_ST_2D::row_stride], cs = in[f_ST_2D::col_stride];
  const bool lines = in.flag(3), zeros = in.flag(4);
  if (zeros && (add || bias)) bad_field("header", in.flags(), "writes zeros (b4) with b1 or b2");
  const int64_t row0 = in[f_ST_2D::row0], line_rows = in[f_ST_2D::line_rows], line_stride = in[f_ST_2D::line_stride];
  if (lines) {
    check_range("line_rows", line_rows, 1, 0xffffffffll);
    check_range("row0", row0, 0, line_rows - 1);
  }
  const uint32_t addr = in[f_ST_2D::addr];
  const std::vector<float>& c = banks_[in[f_ST_2D::c_bank]].c;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < cols; ++col) {
      float v = zeros ? 0.0f : c[static_cast<size_t>(r * cols + col)];   // C pitch = the store's cols
      if (bias) v += get_f32(in[f_ST_2D::bias_addr], col);
      // b3: row q = row0 + r is row q % line_rows of line q / line_rows.
      const int64_t row_at = lines ? (row0 + r) / line_rows * line_stride + (row0 + r) % line_rows * rs : r * rs;
      const int64_t e = row_at + col * cs;
      if (!fp32) {
        set_bf16(addr, e, v);
      } else {
        set_f32(addr, e, add ? get_f32(addr, e) + v : v);
      }
    }
}

void IsaInterpreter::store_col2im(const Insn& in) {
  check_range("c_bank", in[f_ST_COL2IM::c_bank], 0, 1);
  const int64_t rows = in[f_ST_COL2IM::rows], cols = in[f_ST_COL2IM::cols];
  check_range("rows", rows, 0, arch::kMaxTileRows);
  check_range("cols", cols, 0, arch::kMaxTileCols);
  const Window g = window(in, f_ST_COL2IM::c);
  const uint32_t addr = in[f_ST_COL2IM::addr];
  const std::vector<float>& c = banks_[in[f_ST_COL2IM::c_bank]].c;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t e = im2col(g, in[f_ST_COL2IM::p0] + r, in[f_ST_COL2IM::k0] + col);
      if (e >= 0) set_f32(addr, e, get_f32(addr, e) + c[static_cast<size_t>(r * cols + col)]);
    }
}

// ---- VEC -------------------------------------------------------------------------------------------

// NHWC pooling as the CPU layer (host/src/layers/pool.cpp): average = FP32 window sum times
// 1/(kh*kw), padding in the divisor; max = the window's first maximum. Backward accumulates in FP32
// in (oy, ox) order.
void IsaInterpreter::pool(const Insn& in, bool backward) {
  const bool average = in.flag(0);
  const int first = backward ? int{f_V_POOL_BWD::c} : int{f_V_POOL::c};
  const int64_t nb = backward ? in[f_V_POOL_BWD::b] : in[f_V_POOL::b];
  const Window g = window(in, first);
  const uint32_t x = backward ? in[f_V_POOL_BWD::x] : in[f_V_POOL::x];
  const float scale = 1.0f / static_cast<float>(g.kh * g.kw);
  std::vector<float> dx;
  if (backward) dx.assign(static_cast<size_t>(nb * g.h * g.w * g.c), 0.0f);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox)
        for (int64_t ch = 0; ch < g.c; ++ch) {
          const int64_t yi = ((b * g.oh + oy) * g.ow + ox) * g.c + ch;
          float sum = 0.0f, best = 0.0f;
          int64_t best_i = -1;
          for (int64_t ky = 0; ky < g.kh; ++ky)
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
              if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
              const int64_t xi = ((b * g.h + iy) * g.w + ix) * g.c + ch;
              if (average) {
                if (backward) {
                  dx[static_cast<size_t>(xi)] += get_bf16(in[f_V_POOL_BWD::dy], yi) * scale;
                } else {
                  sum += get_bf16(x, xi);
                }
              } else {
                const float v = get_bf16(x, xi);
                if (best_i < 0 || beats(v, best)) {
                  best = v;
                  best_i = xi;
                }
              }
            }
          if (!average && best_i < 0) bad_field("stride_pad", in[first + 4], "leaves a window without a real element");
          if (backward) {
            if (!average) dx[static_cast<size_t>(best_i)] += get_bf16(in[f_V_POOL_BWD::dy], yi);
          } else {
            set_bf16(in[f_V_POOL::y], yi, average ? sum * scale : best);
          }
        }
  if (backward)
    for (size_t i = 0; i < dx.size(); ++i) set_bf16(in[f_V_POOL_BWD::dx], static_cast<int64_t>(i), dx[i]);
}

// Batch norm over x[rows][c] (NHWC): training uses the batch statistics (double, two passes) and
// updates the running ones with the unbiased variance; evaluation uses the running statistics.
void IsaInterpreter::batch_norm(const Insn& in) {
  const bool training = in.flag(0);
  const int64_t rows = in[f_V_BN::rows], c = in[f_V_BN::c];
  check_range("c", c, 1, arch::kMaxVecRow);
  if (training && rows < 2) bad_field("rows", rows, "is below 2 in training");
  const double eps = f32_from_bits(in[f_V_BN::eps]), mom = f32_from_bits(in[f_V_BN::momentum]);
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean, rstd;
    if (training) {
      double s = 0, q = 0;
      for (int64_t r = 0; r < rows; ++r) s += get_bf16(in[f_V_BN::x], r * c + ch);
      mean = s / double(rows);
      for (int64_t r = 0; r < rows; ++r) q += std::pow(get_bf16(in[f_V_BN::x], r * c + ch) - mean, 2);
      rstd = 1.0 / std::sqrt(q / double(rows) + eps);
      set_f32(in[f_V_BN::mean], ch, float(mean));
      set_f32(in[f_V_BN::rstd], ch, float(rstd));
      set_f32(in[f_V_BN::run_mean], ch, float((1 - mom) * get_f32(in[f_V_BN::run_mean], ch) + mom * mean));
      set_f32(in[f_V_BN::run_var], ch,
              float((1 - mom) * get_f32(in[f_V_BN::run_var], ch) + mom * q / double(rows - 1)));
    } else {
      mean = get_f32(in[f_V_BN::run_mean], ch);
      rstd = 1.0 / std::sqrt(double{get_f32(in[f_V_BN::run_var], ch)} + eps);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const double xh = (get_bf16(in[f_V_BN::x], r * c + ch) - mean) * rstd;
      const float y = float(get_f32(in[f_V_BN::gamma], ch) * xh + get_f32(in[f_V_BN::beta], ch));
      const uint16_t yb = f32_to_bf16_bits(y);   // b1: the fused ReLU, V_RELU's rule on the bits
      const bool keep = !((yb & 0x8000u) || !(yb & 0x7fffu));
      set_bf16_bits(in[f_V_BN::y], r * c + ch, in.flag(1) && !keep ? uint16_t{0} : yb);
      if (in.flag(1)) {   // bit i of the mask: element i kept
        const int64_t i = r * c + ch;
        const uint16_t word = bf16_bits(in[f_V_BN::mask], i / 16);
        set_bf16_bits(in[f_V_BN::mask], i / 16,
                      static_cast<uint16_t>(keep ? word | (1u << (i % 16)) : word & ~(1u << (i % 16))));
      }
    }
  }
}

void IsaInterpreter::batch_norm_bwd(const Insn& in) {
  const int64_t rows = in[f_V_BN_BWD::rows], c = in[f_V_BN_BWD::c];
  check_range("c", c, 1, arch::kMaxVecRow);
  // b0: dy passes where the fused ReLU's bit mask (V_BN b1) is set.
  auto get_dy = [&](int64_t i) -> double {
    if (in.flag(0) && !((bf16_bits(in[f_V_BN_BWD::mask], i / 16) >> (i % 16)) & 1u)) return 0.0;
    return get_bf16(in[f_V_BN_BWD::dy], i);
  };
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mean = get_f32(in[f_V_BN_BWD::mean], ch), rstd = get_f32(in[f_V_BN_BWD::rstd], ch);
    double sg = 0, sgx = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double dy = get_dy(r * c + ch);
      sg += dy;
      sgx += dy * (get_bf16(in[f_V_BN_BWD::x], r * c + ch) - mean) * rstd;
    }
    set_f32(in[f_V_BN_BWD::dgamma], ch, float(sgx));
    set_f32(in[f_V_BN_BWD::dbeta], ch, float(sg));
    const double scale = get_f32(in[f_V_BN_BWD::gamma], ch) * rstd;
    for (int64_t r = 0; r < rows; ++r) {
      const double xh = (get_bf16(in[f_V_BN_BWD::x], r * c + ch) - mean) * rstd;
      const double dy = get_dy(r * c + ch);
      set_bf16(in[f_V_BN_BWD::dx], r * c + ch, float(scale * (dy - sg / double(rows) - xh * sgx / double(rows))));
    }
  }
}

void IsaInterpreter::layer_norm(const Insn& in) {
  const int64_t rows = in[f_V_LN::rows], d = in[f_V_LN::d];
  check_range("d", d, 1, arch::kMaxVecRow);
  const double eps = f32_from_bits(in[f_V_LN::eps]);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < d; ++i) s += get_bf16(in[f_V_LN::x], r * d + i);
    const double mean = s / double(d);
    for (int64_t i = 0; i < d; ++i) q += std::pow(get_bf16(in[f_V_LN::x], r * d + i) - mean, 2);
    const double rstd = 1.0 / std::sqrt(q / double(d) + eps);
    set_f32(in[f_V_LN::mean], r, float(mean));
    set_f32(in[f_V_LN::rstd], r, float(rstd));
    for (int64_t i = 0; i < d; ++i) {
      const double xh = (get_bf16(in[f_V_LN::x], r * d + i) - mean) * rstd;
      set_bf16(in[f_V_LN::y], r * d + i, float(get_f32(in[f_V_LN::gamma], i) * xh + get_f32(in[f_V_LN::beta], i)));
    }
  }
}

void IsaInterpreter::layer_norm_bwd(const Insn& in) {
  const int64_t rows = in[f_V_LN_BWD::rows], d = in[f_V_LN_BWD::d];
  check_range("d", d, 1, arch::kMaxVecRow);
  std::vector<double> dg(static_cast<size_t>(d), 0.0), db(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double mean = get_f32(in[f_V_LN_BWD::mean], r), rstd = get_f32(in[f_V_LN_BWD::rstd], r);
    double sg = 0, sgh = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double xh = (get_bf16(in[f_V_LN_BWD::x], r * d + i) - mean) * rstd;
      const double dy = get_bf16(in[f_V_LN_BWD::dy], r * d + i);
      dg[static_cast<size_t>(i)] += dy * xh;
      db[static_cast<size_t>(i)] += dy;
      const double g = dy * get_f32(in[f_V_LN_BWD::gamma], i);
      sg += g;
      sgh += g * xh;
    }
    for (int64_t i = 0; i < d; ++i) {
      const double xh = (get_bf16(in[f_V_LN_BWD::x], r * d + i) - mean) * rstd;
      const double g = get_bf16(in[f_V_LN_BWD::dy], r * d + i) * get_f32(in[f_V_LN_BWD::gamma], i);
      set_bf16(in[f_V_LN_BWD::dx], r * d + i, float(rstd * (g - sg / double(d) - xh * sgh / double(d))));
    }
  }
  for (int64_t i = 0; i < d; ++i) {
    set_f32(in[f_V_LN_BWD::dgamma], i, float(dg[static_cast<size_t>(i)]));
    set_f32(in[f_V_LN_BWD::dbeta], i, float(db[static_cast<size_t>(i)]));
  }
}

void IsaInterpreter::softmax(const Insn& in) {
  const int64_t rows = in[f_V_SOFTMAX::rows], cols = in[f_V_SOFTMAX::cols];
  check_range("cols", cols, 0, arch::kMaxVecRow);
  const double scale = f32_from_bits(in[f_V_SOFTMAX::scale]);
  const uint32_t x = in[f_V_SOFTMAX::x];
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -1e300, s = 0;
    for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, scale * get_bf16(x, r * cols + c));
    for (int64_t c = 0; c < cols; ++c) s += std::exp(scale * get_bf16(x, r * cols + c) - mx);
    for (int64_t c = 0; c < cols; ++c)
      set_bf16(in[f_V_SOFTMAX::y], r * cols + c, float(std::exp(scale * get_bf16(x, r * cols + c) - mx) / s));
  }
}

void IsaInterpreter::softmax_bwd(const Insn& in) {
  const int64_t rows = in[f_V_SOFTMAX_BWD::rows], cols = in[f_V_SOFTMAX_BWD::cols];
  check_range("cols", cols, 0, arch::kMaxVecRow);
  const double scale = f32_from_bits(in[f_V_SOFTMAX_BWD::scale]);
  const uint32_t y = in[f_V_SOFTMAX_BWD::y], dy = in[f_V_SOFTMAX_BWD::dy];
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += double{get_bf16(y, r * cols + c)} * get_bf16(dy, r * cols + c);
    for (int64_t c = 0; c < cols; ++c) {
      const double yv = get_bf16(y, r * cols + c), dyv = get_bf16(dy, r * cols + c);
      set_bf16(in[f_V_SOFTMAX_BWD::dx], r * cols + c, float(scale * yv * (dyv - dot)));
    }
  }
}

// Softmax cross-entropy as model.cpp: out[0] the mean loss (FP32), out[1] the correct count (int32,
// prediction = first maximum), dlogits = (softmax - onehot) / rows with b0.
void IsaInterpreter::cross_entropy(const Insn& in) {
  const int64_t rows = in[f_V_XENT::rows], cls = in[f_V_XENT::classes];
  check_range("classes", cls, 1, arch::kMaxVecRow);
  const uint32_t logits = in[f_V_XENT::logits];
  double loss = 0;
  int32_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t label = get_i32(in[f_V_XENT::labels], r);
    if (label < 0 || label >= cls) bad_field("labels", label, "at row " + std::to_string(r) + " is not a class");
    double mx = -1e300, s = 0;
    int64_t pred = 0;
    for (int64_t c = 0; c < cls; ++c) {
      mx = std::max<double>(mx, get_bf16(logits, r * cls + c));
      if (get_bf16(logits, r * cls + c) > get_bf16(logits, r * cls + pred)) pred = c;
    }
    correct += pred == label;
    for (int64_t c = 0; c < cls; ++c) s += std::exp(get_bf16(logits, r * cls + c) - mx);
    loss += std::log(s) - (get_bf16(logits, r * cls + label) - mx);
    if (in.flag(0))
      for (int64_t c = 0; c < cls; ++c) {
        const double pr = std::exp(get_bf16(logits, r * cls + c) - mx) / s;
        set_bf16(in[f_V_XENT::dlogits], r * cls + c, float((pr - (c == label)) / double(rows)));
      }
  }
  set_f32(in[f_V_XENT::out], 0, float(loss / double(rows)));
  set_i32(in[f_V_XENT::out], 1, correct);
}

// ---- UPD and PGEN ------------------------------------------------------------------------------------

// SGD with momentum by the shared rule (docs/isa.md, SGD), each line one fused multiply-add:
// gi = g + wd*w; gi += lambda*w where W_F prunes the weight (b1); v = mu*v + gi; w -= lr*v.
void IsaInterpreter::sgd(const Insn& in) {
  const bool decay = in.flag(0), srste = in.flag(1);
  const int64_t count = in[f_SGD::count], n = in[f_SGD::n], m = in[f_SGD::m], k = in[f_SGD::k];
  const uint32_t hyper = in[f_SGD::hyper];
  const float lr = get_f32(hyper, 0), mu = get_f32(hyper, 1), wd = decay ? get_f32(hyper, 2) : 0.0f;
  const float lambda = get_f32(hyper, 3);
  if (srste) {
    check_setting(n, m);
    if (k < 1 || k % m) bad_field("k", k, "is not a positive multiple of m = " + std::to_string(m));
    if (count % k) bad_field("count", count, "is not a multiple of k = " + std::to_string(k));
  }
  for (int64_t i = 0; i < count; ++i) {
    const float w = get_f32(in[f_SGD::w], i);
    bool pruned = false;
    if (srste) {
      const int64_t row = i / k, group = i % k / m, pos = i % k % m, first = (row * (k / m) + group) * n;
      pruned = true;
      for (int64_t j = 0; j < n; ++j) pruned &= nibble(in[f_SGD::idx_addr], first + j) != uint32_t(pos);
    }
    float gi = std::fma(wd, w, get_f32(in[f_SGD::g], i));
    if (pruned) gi = std::fma(lambda, w, gi);
    const float v = std::fma(mu, get_f32(in[f_SGD::v], i), gi);
    const float nw = std::fma(-lr, v, w);
    nonfinite_ += !std::isfinite(nw);
    set_f32(in[f_SGD::v], i, v);
    set_f32(in[f_SGD::w], i, nw);
  }
}

// Pre-generation from the FP32 master W[cout][k]: lines are rows with groups along K (W_F), or
// columns with groups along Cout (b0, W_B); b1 writes the compressed values and packed indices,
// b2 the masked dense BF16 copy, [cout][k], b3 the same transposed, [k][cout], at dense_t_addr. n == m
// without b1 is a plain BF16 copy for any m.
void IsaInterpreter::pgen(const Insn& in) {
  const bool along_cout = in.flag(0), compressed = in.flag(1), masked = in.flag(2), transposed = in.flag(3);
  const int64_t cout = in[f_PGEN::cout], k = in[f_PGEN::k], n = in[f_PGEN::n], m = in[f_PGEN::m];
  const uint32_t w = in[f_PGEN::w];
  auto put_dense = [&](int64_t e, float v) {
    if (masked) set_bf16(in[f_PGEN::dense_addr], e, v);
    if (transposed) set_bf16(in[f_PGEN::dense_t_addr], e % k * cout + e / k, v);
  };
  if (n == m && !compressed) {
    for (int64_t e = 0; e < cout * k; ++e) put_dense(e, get_f32(w, e));
    return;
  }
  check_setting(n, m);
  // One form: groups along Cout (W_B) or K (W_F), compressed at val/idx, masked dense where asked.
  auto form = [&](bool by_cout, bool pack, uint32_t val, uint32_t idx, bool dense_out) {
    const int64_t lines = by_cout ? k : cout, len = by_cout ? cout : k;
    if (len % m) bad_field(by_cout ? "cout" : "k", len, "is not a multiple of m = " + std::to_string(m));
    const int64_t lg = len / m;
    float v[16];
    for (int64_t l = 0; l < lines; ++l)
      for (int64_t g = 0; g < lg; ++g) {
        auto elem = [&](int64_t i) { return by_cout ? (g * m + i) * k + l : l * k + g * m + i; };
        for (int64_t i = 0; i < m; ++i) v[i] = get_f32(w, elem(i));
        const uint32_t keep = keep_mask(v, m, n);
        if (pack) {
          uint32_t left = keep;
          for (int64_t j = 0; j < n; ++j) {
            const int bit = std::countr_zero(left);
            left &= left - 1;
            set_bf16(val, (l * lg + g) * n + j, v[bit]);
            set_nibble(idx, (l * lg + g) * n + j, static_cast<uint32_t>(bit));
          }
        }
        if (dense_out)
          for (int64_t i = 0; i < m; ++i) put_dense(elem(i), (keep >> i) & 1 ? v[i] : 0.0f);
      }
  };
  form(along_cout, compressed, in[f_PGEN::val_addr], in[f_PGEN::idx_addr], true);
  // b4: W_B as well (its selection is the plain b0 PGEN's), from the same master.
  if (in.flag(4)) form(true, true, in[f_PGEN::val_b_addr], in[f_PGEN::idx_b_addr], false);
}

}  // namespace sat::test
