#pragma once
// The DRAM accesses of an instruction, as docs/isa.md defines them: which field's address, read or
// write, and the elements touched. One definition for every part that needs the ISA's memory
// semantics without running it: the SystemC model's traffic and timing (sim/), the stream checker
// of the tests (tests/support/stream_checker.cpp). Dependency-free C++17.
#include <cstdint>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"

namespace sat::isa {

// The farthest of `rows` rows (rows >= 1) in lines (ST_2D b3): row q = row0 + r at (q / line_rows) *
// line_stride + (q % line_rows) * row_stride, in elements. The last row, or the last row of the line
// before it when that lies farther (a line may be longer than line_stride). One definition for the
// store unit's range check and the stream checker.
constexpr uint64_t lines_far_row(uint64_t row0, uint64_t rows, uint64_t line_rows, uint64_t line_stride,
                                 uint64_t row_stride) {
  const uint64_t q = row0 + rows - 1, last = q / line_rows * line_stride + q % line_rows * row_stride;
  if (q / line_rows == row0 / line_rows) return last;
  const uint64_t prev_end = (q / line_rows - 1) * line_stride + (line_rows - 1) * row_stride;
  return last > prev_end ? last : prev_end;
}

// Elements (r, c), r < rows, c < cols, at halfword address addr + (row_offset(r) + c * col_stride)
// * elem_halfwords of channel addr_channel(addr), where row_offset(r) = r * row_stride, or, when
// line_rows > 0 (ST_2D b3), row q = row0 + r sits in line q / line_rows at (q / line_rows) *
// line_stride + (q % line_rows) * row_stride. A `window` access (LD_CONV, ST_COL2IM) gathers or
// scatters rows x cols elements of the convolution window over the NHWC tensor at `addr`, whose
// extent the fields do not give (the strides are 0 then).
struct DramAccess {
  const char* field;
  bool write;
  uint32_t addr;
  int64_t rows, cols, row_stride, col_stride;
  int elem_halfwords;   // 1: BF16 (packed indices are counted by halfword), 2: FP32 / int32
  bool window;
  int64_t row0 = 0, line_rows = 0, line_stride = 0;

  int64_t elements() const { return rows * cols; }
  // Element offset of row r (r < rows), before scaling by elem_halfwords.
  int64_t row_offset(int64_t r) const {
    if (line_rows <= 0) return r * row_stride;
    const int64_t q = row0 + r;
    return q / line_rows * line_stride + q % line_rows * row_stride;
  }
  // Element offset of the farthest row (rows >= 1).
  int64_t far_row_offset() const {
    if (line_rows <= 0) return (rows - 1) * row_stride;
    return static_cast<int64_t>(lines_far_row(static_cast<uint64_t>(row0), static_cast<uint64_t>(rows),
                                              static_cast<uint64_t>(line_rows), static_cast<uint64_t>(line_stride),
                                              static_cast<uint64_t>(row_stride)));
  }
  uint64_t bytes() const { return static_cast<uint64_t>(rows * cols) * 2u * static_cast<uint64_t>(elem_halfwords); }
};

inline constexpr int kMaxDramAccesses = 16;

// The input patch of an LD_CONV tile (docs/isa.md, LD_CONV): input pixels [pixel0, pixel0 + pixels)
// of the NHWC tensor in (b, iy, ix) order and channels [c0, c0 + channels): every element its
// windows reach, as whole image rows between the first and the last. `fits` when the patch holds at
// most `capacity` elements: the load unit then reads it with one strided burst (pixels runs of
// channels elements, pitch c) and builds the tile from it on chip. One definition for the kernel's
// load unit, the simulator's traffic and the tests.
struct ConvPatch {
  bool fits = false;
  int64_t pixel0 = 0, pixels = 0, c0 = 0, channels = 0;
  int64_t c = 0, h = 0, w = 0;   // the tensor's geometry, which gives the pixel numbering
  int64_t elements() const { return pixels * channels; }
  // Every pixel and channel of `o` is in this patch, numbered alike: LD_CONV b3's test (the tile
  // is built from this patch).
  bool covers(const ConvPatch& o) const {
    return c == o.c && h == o.h && w == o.w && o.pixel0 >= pixel0 && o.pixel0 + o.pixels <= pixel0 + pixels &&
           o.c0 >= c0 && o.c0 + o.channels <= c0 + channels;
  }
};

inline ConvPatch conv_patch(const Insn& in, int64_t capacity) {
  ConvPatch pt;
  const int64_t c = in[f_LD_CONV::c], h = in[f_LD_CONV::h], w = in[f_LD_CONV::w];
  const int64_t kh = lo16(in[f_LD_CONV::kh_kw]), kw = hi16(in[f_LD_CONV::kh_kw]);
  const int64_t stride = lo16(in[f_LD_CONV::stride_pad]), pad = hi16(in[f_LD_CONV::stride_pad]);
  const int64_t oh = in[f_LD_CONV::oh], ow = in[f_LD_CONV::ow];
  const bool transposed = in.flag(1);
  const int64_t np = transposed ? in[f_LD_CONV::cols] : in[f_LD_CONV::rows];
  const int64_t nk = transposed ? in[f_LD_CONV::rows] : in[f_LD_CONV::cols];
  const int64_t p0 = in[f_LD_CONV::p0], k0 = in[f_LD_CONV::k0];
  const int64_t taps = kh * kw, kvol = c * taps;
  if (capacity <= 0 || c <= 0 || h <= 0 || w <= 0 || taps <= 0 || stride <= 0 || oh <= 0 || ow <= 0 || np <= 0 ||
      nk <= 0 || k0 >= kvol)
    return pt;
  pt.c = c;
  pt.h = h;
  pt.w = w;
  const int64_t ohw = oh * ow;
  const int64_t first = p0, last = p0 + np - 1;
  const int64_t b_first = first / ohw, oy_first = first % ohw / ow;
  const int64_t b_last = last / ohw, oy_last = last % ohw / ow;
  const int64_t iy_lo = oy_first * stride - pad < 0 ? 0 : oy_first * stride - pad;
  const int64_t iy_hi_raw = oy_last * stride - pad + kh - 1;
  const int64_t iy_hi = iy_hi_raw >= h ? h - 1 : iy_hi_raw;
  if (iy_hi < 0) return pt;
  pt.pixel0 = (b_first * h + iy_lo) * w;
  pt.pixels = (b_last * h + iy_hi) * w + w - pt.pixel0;
  const int64_t k_end = k0 + nk > kvol ? kvol : k0 + nk;
  if (in.flag(2)) {   // tap-major K: one tap's channel run, or every channel when taps are crossed
    const bool one_tap = k0 / c == (k_end - 1) / c;
    pt.c0 = one_tap ? k0 % c : 0;
    pt.channels = one_tap ? (k_end - 1) % c + 1 - pt.c0 : c;
  } else {
    pt.c0 = k0 / taps;
    pt.channels = (k_end - 1) / taps + 1 - pt.c0;
  }
  pt.fits = pt.pixels > 0 && pt.elements() <= capacity;
  return pt;
}

namespace access_detail {

inline DramAccess flat(const char* field, bool write, uint32_t addr, int64_t n, bool f32) {
  return {field, write, addr, 1, n, 0, 1, f32 ? 2 : 1, false};
}
inline DramAccess window(const char* field, bool write, uint32_t addr, int64_t rows, int64_t cols, int eh) {
  return {field, write, addr, rows, cols, 0, 0, eh, true};
}
// `addr` moved on by `halfwords`; an offset past the 30 bits lands in no region.
inline uint32_t advance(uint32_t addr, int64_t halfwords) {
  const int64_t off = int64_t{addr_offset(addr)} + halfwords;
  return make_addr(addr_channel(addr), off < (int64_t{1} << arch::kAddrChannelShift) ? static_cast<uint32_t>(off)
                                                                                     : addr_offset(~0u));
}

// The DRAM ranges of LD_SPW: the compressed lines' values and index halfwords, or (b0) the
// master's rows or columns the selection ranks.
template <typename Add>
void sparse_load(const Insn& in, Add&& add) {
  const int64_t rows = in[f_LD_SPW::rows], groups = in[f_LD_SPW::groups], n = in[f_LD_SPW::n];
  const int64_t m = in[f_LD_SPW::m], l0 = in[f_LD_SPW::l0], g0 = in[f_LD_SPW::g0];
  if (in.flag(0)) {
    const int64_t k = in[f_LD_SPW::idx_addr];   // the master's row length, not an address
    if (in.flag(1)) {
      add({"val_addr", false, advance(in[f_LD_SPW::val_addr], (g0 * m * k + l0) * 2), groups * m, rows, k, 1, 2,
           false});
    } else {
      add({"val_addr", false, advance(in[f_LD_SPW::val_addr], (l0 * k + g0 * m) * 2), rows, groups * m, k, 1, 2,
           false});
    }
    return;
  }
  const int64_t lg = in[f_LD_SPW::line_groups];
  const int64_t first = (l0 * lg + g0) * n, last = ((l0 + rows - 1) * lg + g0 + groups) * n - 1;
  add({"val_addr", false, advance(in[f_LD_SPW::val_addr], first), rows, groups * n, lg * n, 1, 1, false});
  // Indices: each line's halfwords (four nibbles each) covering its entries. When the lines' entry
  // pitch is a whole number of halfwords every line spans the same count, so the access is 2-D;
  // otherwise the span from the first line to the last.
  const int64_t pitch = lg * n, e_first = first % 4;
  if (pitch % 4 == 0) {
    add({"idx_addr", false, advance(in[f_LD_SPW::idx_addr], first / 4), rows, (e_first + groups * n + 3) / 4,
         pitch / 4, 1, 1, false});
  } else {
    add(flat("idx_addr", false, advance(in[f_LD_SPW::idx_addr], first / 4), last / 4 - first / 4 + 1, false));
  }
}

}  // namespace access_detail

// Writes the DRAM accesses `in` makes into out[0..n) and returns n (<= kMaxDramAccesses). GEMM and
// FINISH touch no DRAM; an unknown opcode has none. `conv_patch_elems` is the load unit's patch
// buffer (LD_CONV reads its patch when it fits, else gathers the windows).
inline int dram_accesses(const Insn& in, DramAccess out[kMaxDramAccesses],
                         int64_t conv_patch_elems = arch::kConvPatchElems,
                         int64_t vec_scratch_elems = arch::kVecScratchElems) {
  using namespace access_detail;
  int count = 0;
  auto add = [&](const DramAccess& a) {
    if (count < kMaxDramAccesses) out[count++] = a;
  };
  const auto op = static_cast<Opcode>(in.opcode());
  const bool b0 = in.flag(0), b1 = in.flag(1), b2 = in.flag(2);
  switch (op) {
    case OP_LD_2D:
      add({"addr", false, in[f_LD_2D::addr], in[f_LD_2D::rows], in[f_LD_2D::cols], in[f_LD_2D::row_stride],
           in[f_LD_2D::col_stride], 1, false});
      break;
    case OP_LD_CONV: {
      const ConvPatch pt = conv_patch(in, conv_patch_elems);
      if (pt.fits && in.flag(3)) break;   // patch held: the tile is built from the buffer
      if (pt.fits) {
        const int64_t c = in[f_LD_CONV::c];
        const uint32_t at = advance(in[f_LD_CONV::addr], pt.pixel0 * c + pt.c0);
        if (pt.channels == c) {
          add(flat("addr", false, at, pt.elements(), false));   // every channel: one contiguous burst
        } else {
          add({"addr", false, at, pt.pixels, pt.channels, c, 1, 1, false});
        }
      } else {
        add(window("addr", false, in[f_LD_CONV::addr], in[f_LD_CONV::rows], in[f_LD_CONV::cols], 1));
      }
      break;
    }
    case OP_LD_SPW: sparse_load(in, add); break;
    case OP_ST_2D: {
      DramAccess w{"addr", true, in[f_ST_2D::addr], in[f_ST_2D::rows], in[f_ST_2D::cols], in[f_ST_2D::row_stride],
                   in[f_ST_2D::col_stride], b0 ? 2 : 1, false};
      if (in.flag(3)) {   // rows in lines
        w.row0 = in[f_ST_2D::row0];
        w.line_rows = in[f_ST_2D::line_rows];
        w.line_stride = in[f_ST_2D::line_stride];
      }
      if (b1) {
        DramAccess r = w;
        r.write = false;
        add(r);
      }
      if (b2) add(flat("bias_addr", false, in[f_ST_2D::bias_addr], in[f_ST_2D::cols], true));
      add(w);
      break;
    }
    case OP_ST_COL2IM:   // a scatter-add: reads and writes the FP32 elements it adds into
    add(window("addr", false, in[f_ST_COL2IM::addr], in[f_ST_COL2IM::rows], in[f_ST_COL2IM::cols], 2));
    add(window("addr", true, in[f_ST_COL2IM::addr], in[f_ST_COL2IM::rows], in[f_ST_COL2IM::cols], 2));
    break;
    case OP_V_FILL: add(flat("y", true, in[f_V_FILL::y], in[f_V_FILL::count], b0)); break;
    case OP_V_CONVERT:
      add(flat("x", false, in[f_V_CONVERT::x], in[f_V_CONVERT::count], true));
      add(flat("y", true, in[f_V_CONVERT::y], in[f_V_CONVERT::count], false));
      break;
    case OP_V_ADD:
      add(flat("a", false, in[f_V_ADD::a], in[f_V_ADD::count], b0));
      add(flat("b", false, in[f_V_ADD::b], in[f_V_ADD::count], b1));
      add(flat("y", true, in[f_V_ADD::y], in[f_V_ADD::count], b2));
      break;
    case OP_V_BCAST_ADD: {
      const int64_t n = int64_t{in[f_V_BCAST_ADD::rows]} * in[f_V_BCAST_ADD::cols];
      add(flat("x", false, in[f_V_BCAST_ADD::x], n, false));
      add(flat("p", false, in[f_V_BCAST_ADD::p], in[f_V_BCAST_ADD::cols], true));
      add(flat("y", true, in[f_V_BCAST_ADD::y], n, false));
      break;
    }
    case OP_V_COLSUM: {
      const int64_t n = int64_t{in[f_V_COLSUM::rows]} * in[f_V_COLSUM::cols];
      add(flat("x", false, in[f_V_COLSUM::x], n, false));
      if (b0) add(flat("y", false, in[f_V_COLSUM::y], in[f_V_COLSUM::cols], true));
      add(flat("y", true, in[f_V_COLSUM::y], in[f_V_COLSUM::cols], true));
      break;
    }
    case OP_V_RELU:
    case OP_V_GELU:
      add(flat("x", false, in[f_V_RELU::x], in[f_V_RELU::count], false));
      add(flat("y", true, in[f_V_RELU::y], in[f_V_RELU::count], false));
      break;
    case OP_V_RELU_BWD:
    case OP_V_GELU_BWD:
      add(flat("x", false, in[f_V_RELU_BWD::x], in[f_V_RELU_BWD::count], false));
      add(flat("dy", false, in[f_V_RELU_BWD::dy], in[f_V_RELU_BWD::count], false));
      add(flat("dx", true, in[f_V_RELU_BWD::dx], in[f_V_RELU_BWD::count], false));
      break;
    case OP_V_POOL: {
      const int64_t b = in[f_V_POOL::b], c = in[f_V_POOL::c];
      add(flat("x", false, in[f_V_POOL::x], b * in[f_V_POOL::h] * in[f_V_POOL::w] * c, false));
      add(flat("y", true, in[f_V_POOL::y], b * in[f_V_POOL::oh] * in[f_V_POOL::ow] * c, false));
      break;
    }
    case OP_V_POOL_BWD: {
      const int64_t b = in[f_V_POOL_BWD::b], c = in[f_V_POOL_BWD::c];
      const int64_t xn = b * in[f_V_POOL_BWD::h] * in[f_V_POOL_BWD::w] * c;
      if (!b0) add(flat("x", false, in[f_V_POOL_BWD::x], xn, false));
      const int64_t yn = b * in[f_V_POOL_BWD::oh] * in[f_V_POOL_BWD::ow] * c;
      add(flat("dy", false, in[f_V_POOL_BWD::dy], yn, false));
      add(flat("dx", true, in[f_V_POOL_BWD::dx], xn, false));
      break;
    }
    case OP_V_BN: {
      const int64_t n = int64_t{in[f_V_BN::rows]} * in[f_V_BN::c], c = in[f_V_BN::c];
      // Training passes over x three times (sum, squared deviations from the mean, normalisation):
      // the statistics run over the rows, so no pass can start before the previous one has seen
      // them all. From DRAM each time, unless x fits the vector unit's scratch.
      const int passes = !b0 ? 1 : n <= vec_scratch_elems ? 1 : 3;
      for (int pass = 0; pass < passes; ++pass) add(flat("x", false, in[f_V_BN::x], n, false));
      add(flat("gamma", false, in[f_V_BN::gamma], c, true));
      add(flat("beta", false, in[f_V_BN::beta], c, true));
      add(flat("run_mean", false, in[f_V_BN::run_mean], c, true));
      add(flat("run_var", false, in[f_V_BN::run_var], c, true));
      if (b0) {
        add(flat("mean", true, in[f_V_BN::mean], c, true));
        add(flat("rstd", true, in[f_V_BN::rstd], c, true));
        add(flat("run_mean", true, in[f_V_BN::run_mean], c, true));
        add(flat("run_var", true, in[f_V_BN::run_var], c, true));
      }
      add(flat("y", true, in[f_V_BN::y], n, false));
      if (in.flag(1)) add(flat("mask", true, in[f_V_BN::mask], (n + 15) / 16, false));   // the ReLU's bits
      break;
    }
    case OP_V_BN_BWD: {
      const int64_t n = int64_t{in[f_V_BN_BWD::rows]} * in[f_V_BN_BWD::c], c = in[f_V_BN_BWD::c];
      // The sums over the rows, then dx: x and dy from DRAM twice unless both fit the scratch.
      // With b0 the fused ReLU's bit mask (a bit an element) masks dy as it is read.
      for (int pass = 0; pass < (2 * n <= vec_scratch_elems ? 1 : 2); ++pass) {
        add(flat("x", false, in[f_V_BN_BWD::x], n, false));
        add(flat("dy", false, in[f_V_BN_BWD::dy], n, false));
        if (b0) add(flat("mask", false, in[f_V_BN_BWD::mask], (n + 15) / 16, false));
      }
      add(flat("gamma", false, in[f_V_BN_BWD::gamma], c, true));
      add(flat("mean", false, in[f_V_BN_BWD::mean], c, true));
      add(flat("rstd", false, in[f_V_BN_BWD::rstd], c, true));
      add(flat("dx", true, in[f_V_BN_BWD::dx], n, false));
      add(flat("dgamma", true, in[f_V_BN_BWD::dgamma], c, true));
      add(flat("dbeta", true, in[f_V_BN_BWD::dbeta], c, true));
      break;
    }
    case OP_V_LN: {
      const int64_t rows = in[f_V_LN::rows], d = in[f_V_LN::d];
      add(flat("x", false, in[f_V_LN::x], rows * d, false));
      add(flat("gamma", false, in[f_V_LN::gamma], d, true));
      add(flat("beta", false, in[f_V_LN::beta], d, true));
      add(flat("y", true, in[f_V_LN::y], rows * d, false));
      add(flat("mean", true, in[f_V_LN::mean], rows, true));
      add(flat("rstd", true, in[f_V_LN::rstd], rows, true));
      break;
    }
    case OP_V_LN_BWD: {
      const int64_t rows = in[f_V_LN_BWD::rows], d = in[f_V_LN_BWD::d];
      add(flat("x", false, in[f_V_LN_BWD::x], rows * d, false));
      add(flat("dy", false, in[f_V_LN_BWD::dy], rows * d, false));
      add(flat("gamma", false, in[f_V_LN_BWD::gamma], d, true));
      add(flat("mean", false, in[f_V_LN_BWD::mean], rows, true));
      add(flat("rstd", false, in[f_V_LN_BWD::rstd], rows, true));
      add(flat("dx", true, in[f_V_LN_BWD::dx], rows * d, false));
      add(flat("dgamma", true, in[f_V_LN_BWD::dgamma], d, true));
      add(flat("dbeta", true, in[f_V_LN_BWD::dbeta], d, true));
      break;
    }
    case OP_V_SOFTMAX: {
      const int64_t n = int64_t{in[f_V_SOFTMAX::rows]} * in[f_V_SOFTMAX::cols];
      add(flat("x", false, in[f_V_SOFTMAX::x], n, false));
      add(flat("y", true, in[f_V_SOFTMAX::y], n, false));
      break;
    }
    case OP_V_SOFTMAX_BWD: {
      const int64_t n = int64_t{in[f_V_SOFTMAX_BWD::rows]} * in[f_V_SOFTMAX_BWD::cols];
      add(flat("y", false, in[f_V_SOFTMAX_BWD::y], n, false));
      add(flat("dy", false, in[f_V_SOFTMAX_BWD::dy], n, false));
      add(flat("dx", true, in[f_V_SOFTMAX_BWD::dx], n, false));
      break;
    }
    case OP_V_XENT: {
      const int64_t rows = in[f_V_XENT::rows], n = rows * in[f_V_XENT::classes];
      add(flat("logits", false, in[f_V_XENT::logits], n, false));
      add(flat("labels", false, in[f_V_XENT::labels], rows, true));
      if (b0) add(flat("dlogits", true, in[f_V_XENT::dlogits], n, false));
      add(flat("out", true, in[f_V_XENT::out], 2, true));
      break;
    }
    case OP_V_PERMUTE: {
      const int64_t n = int64_t{in[f_V_PERMUTE::outer]} * in[f_V_PERMUTE::rows] * in[f_V_PERMUTE::cols];
      add(flat("x", false, in[f_V_PERMUTE::x], n, false));
      add(flat("y", true, in[f_V_PERMUTE::y], n, false));
      break;
    }
    case OP_SGD: {
      const int64_t n = in[f_SGD::count];
      add(flat("w", false, in[f_SGD::w], n, true));
      add(flat("v", false, in[f_SGD::v], n, true));
      add(flat("g", false, in[f_SGD::g], n, true));
      add(flat("hyper", false, in[f_SGD::hyper], 4, true));
      add(flat("w", true, in[f_SGD::w], n, true));
      add(flat("v", true, in[f_SGD::v], n, true));
      break;
    }
    case OP_PGEN: {
      const int64_t elems = int64_t{in[f_PGEN::cout]} * in[f_PGEN::k];
      const int64_t n = in[f_PGEN::n], m = in[f_PGEN::m];
      add(flat("w", false, in[f_PGEN::w], elems, true));
      if (b1 && m > 0) {
        const int64_t entries = elems / m * n;
        add(flat("val_addr", true, in[f_PGEN::val_addr], entries, false));
        add(flat("idx_addr", true, in[f_PGEN::idx_addr], (entries + 3) / 4, false));
      }
      if (b2) add(flat("dense_addr", true, in[f_PGEN::dense_addr], elems, false));
      if (in.flag(3)) add(flat("dense_t_addr", true, in[f_PGEN::dense_t_addr], elems, false));
      if (in.flag(4) && m > 0) {   // W_B too; its index halfwords are shared by neighbouring blocks
        const int64_t entries = elems / m * n;
        add(flat("val_b_addr", true, in[f_PGEN::val_b_addr], entries, false));
        add(flat("idx_b_addr", false, in[f_PGEN::idx_b_addr], (entries + 3) / 4, false));
        add(flat("idx_b_addr", true, in[f_PGEN::idx_b_addr], (entries + 3) / 4, false));
      }
      break;
    }
    default:
      break;   // GEMM and FINISH touch no DRAM
  }
  return count;
}

// ---- On-chip bank accesses ------------------------------------------------------------------------
// The on-chip buffers an instruction reads or writes: which buffer, which of its kBanks banks, and
// how many elements (BF16 for A and B, FP32 for C; a packed index entry of B counts one). The
// simulator uses them for the banks' port limits and the buffer traffic of its energy model.
enum Buffer : uint8_t { BUF_A, BUF_B, BUF_C };
inline const char* buffer_name(int b) { return b == BUF_A ? "A" : b == BUF_B ? "B" : "C"; }

struct BankAccess {
  Buffer buffer;
  uint32_t bank;
  bool write;
  int64_t elements;
  int elem_bytes;   // 2 (BF16), 4 (FP32 accumulators), 1 (packed 4-bit index pairs of B)
  int64_t bytes() const { return elements * elem_bytes; }
};

inline constexpr int kMaxBankAccesses = 4;
static_assert(int{f_LD_CONV::bank} == int{f_LD_2D::bank} && int{f_LD_CONV::rows} == int{f_LD_2D::rows} &&
                  int{f_LD_CONV::cols} == int{f_LD_2D::cols},
              "bank_accesses reads LD_CONV through LD_2D's field positions");
static_assert(int{f_ST_COL2IM::c_bank} == int{f_ST_2D::c_bank} && int{f_ST_COL2IM::rows} == int{f_ST_2D::rows} &&
                  int{f_ST_COL2IM::cols} == int{f_ST_2D::cols},
              "bank_accesses reads ST_COL2IM through ST_2D's field positions");

inline int bank_accesses(const Insn& in, BankAccess out[kMaxBankAccesses]) {
  int count = 0;
  auto add = [&](BankAccess a) { out[count++] = a; };
  switch (in.opcode()) {
    case OP_LD_2D:
    case OP_LD_CONV: {   // flag 0: into the B buffer, else A; fields bank, rows, cols share positions
      const int64_t n = int64_t{in[f_LD_2D::rows]} * in[f_LD_2D::cols];
      add({in.flag(0) ? BUF_B : BUF_A, in[f_LD_2D::bank], true, n, 2});
      break;
    }
    case OP_LD_SPW: {   // kept values and their in-group indices (two 4-bit indices a byte)
      const int64_t entries = int64_t{in[f_LD_SPW::rows]} * in[f_LD_SPW::groups] * in[f_LD_SPW::n];
      add({BUF_B, in[f_LD_SPW::bank], true, entries, 2});
      add({BUF_B, in[f_LD_SPW::bank], true, (entries + 1) / 2, 1});
      break;
    }
    case OP_GEMM: {
      const int64_t mt = in[f_GEMM::mt], nt = in[f_GEMM::nt], kt = in[f_GEMM::kt];
      const bool sparse = in.flag(1);
      const int64_t n = in[f_GEMM::n], m = in[f_GEMM::m];
      const int64_t kept = sparse && m > 0 ? kt * n / m : kt;
      add({BUF_A, in[f_GEMM::a_bank], false, mt * kt, 2});
      add({BUF_B, in[f_GEMM::b_bank], false, nt * kept, 2});
      if (in.flag(0)) add({BUF_C, in[f_GEMM::c_bank], false, mt * nt, 4});   // accumulate: read-modify-write
      add({BUF_C, in[f_GEMM::c_bank], true, mt * nt, 4});
      break;
    }
    case OP_ST_2D:
    case OP_ST_COL2IM:   // fields c_bank, rows, cols share positions
      if (in.opcode() == OP_ST_2D && in.flag(4)) break;   // zeros: the C bank is not read
      add({BUF_C, in[f_ST_2D::c_bank], false, int64_t{in[f_ST_2D::rows]} * in[f_ST_2D::cols], 4});
      break;
    default:
      break;   // the vector, update and pre-generation units stream through their own line buffers
  }
  return count;
}

}  // namespace sat::isa
