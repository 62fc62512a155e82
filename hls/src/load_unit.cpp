// LOAD unit: DRAM -> operand buffers. Strided tiles (LD_2D), convolution windows (LD_CONV, im2col
// address generation, optionally transposed) and compressed N:M weight lines (LD_SPW).
#include "kernel.hpp"
#include "sat/arch/access.hpp"

namespace sat::kernel {

namespace {

constexpr int kMaxSide = arch::kMaxTileK > arch::kMaxTileRows ? arch::kMaxTileK : arch::kMaxTileRows;

// Checks the bank and the tile shape of a load into the A buffer (b_dst false) or the B buffer.
bool check_tile(Ctx& cx, const Insn& in, int bank_f, int rows_f, int cols_f, bool b_dst) {
  const uint32_t max_rows = b_dst ? arch::kMaxTileCols : arch::kMaxTileRows;
  if (in[bank_f] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, bank_f, arch::kBanks);
  if (in[rows_f] == 0 || in[rows_f] > max_rows) return cx.bad_field(in, rows_f, max_rows);
  if (in[cols_f] == 0 || in[cols_f] > static_cast<uint32_t>(arch::kMaxTileK))
    return cx.bad_field(in, cols_f, arch::kMaxTileK);
  return true;
}

bool ld_2d(Ctx& cx, const Insn& in) {
  namespace f = isa::f_LD_2D;
  const bool to_b = in.flag(0);
  if (!check_tile(cx, in, f::bank, f::rows, f::cols, to_b)) return false;
  const uint32_t rows = in[f::rows], cols = in[f::cols];
  const uint64_t rs = in[f::row_stride], cs = in[f::col_stride];
  DdrIn src = region(cx, in, f::addr, (rows - 1) * rs + (cols - 1) * cs + 1);
  if (src == nullptr) return false;
  BankOut dst = to_b ? cx.buf->b[in[f::bank]] : cx.buf->a[in[f::bank]];
LD2D_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    DdrIn s = src + r * rs;
    BankOut d = dst + r * cols;
    if (cs == 1) {
      DdrReader<1> row(s, cols);
LD2D_BURST:
      for (uint32_t c = 0; c < cols; ++c) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
        d[c] = row.next();
      }
    } else {
      // A column walk (a transposed tile): one request per element.
LD2D_STRIDED:
      for (uint32_t c = 0; c < cols; ++c) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
        d[c] = s[c * cs];
      }
    }
  }
  return true;
}

// The patch path of LD_CONV: one strided burst of the pixels and channels the tile's windows reach
// into the patch buffer (none when b3 says the buffer holds them), then the tile built from it; the
// bank gets the same bits as the gather.
bool ld_conv_patch(Ctx& cx, const Insn& in, const ConvGeom& g, const isa::ConvPatch& pt, DdrIn src,
                   const int64_t* p_base, const int32_t* p_iy, const int32_t* p_ix, const int32_t* k_ky,
                   const int32_t* k_kx, const int32_t* k_ci, BankOut dst) {
  PatchBuffer& pb = *cx.patch;
  uint16_t* patch = pb.data;   // partitioned where the engine declares it (top.cpp)
  const int64_t c = g.c, channels = pt.channels;
  const uint32_t addr = in[isa::f_LD_CONV::addr];
  // b3: the held patch covers this tile's (it may be larger: the phases of a strided convolution's
  // BP read sub-windows of one patch); the tile is built from the held patch as it lies.
  const bool held = pb.valid && pb.addr == addr && pb.extent.covers(pt);
  if (in.flag(3)) {
    if (!held) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], 1u << (24 + 3));
  } else {
    pb.valid = true;
    pb.addr = addr;
    pb.extent = pt;
  LDCONV_PATCH_FILL:
    for (int64_t px = 0; px < pt.pixels; ++px) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
      DdrReader<1> run(src + (pt.pixel0 + px) * c + pt.c0, static_cast<uint64_t>(channels));
    LDCONV_PATCH_RUN:
      for (int64_t ch = 0; ch < channels; ++ch) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
        patch[px * channels + ch] = run.next();
      }
    }
  }
  const bool transposed = in.flag(1);
  const uint32_t rows = in[isa::f_LD_CONV::rows], cols = in[isa::f_LD_CONV::cols];
  const int32_t h = static_cast<int32_t>(g.h), w = static_cast<int32_t>(g.w);
  const int64_t pixel0 = pb.extent.pixel0, c0 = pb.extent.c0, pitch = pb.extent.channels;
LDCONV_PATCH_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
  LDCONV_PATCH_COLS:
    for (uint32_t col = 0; col < cols; ++col) {
      // kLoadFillBeats beats of the bank a cycle: the patch and the bank are partitioned for it.
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = kFillElems
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
      const uint32_t i = transposed ? col : r, j = transposed ? r : col;
      const int32_t iy = p_iy[i] + k_ky[j], ix = p_ix[i] + k_kx[j];
      const bool inside = k_ci[j] >= 0 && iy >= 0 && iy < h && ix >= 0 && ix < w;
      // p_base is the sample's first element; as a pixel index, the sample's first pixel.
      const int64_t pixel = p_base[i] / c + static_cast<int64_t>(iy) * w + ix;
      dst[r * cols + col] = inside ? patch[(pixel - pixel0) * pitch + (k_ci[j] - c0)] : uint16_t{0};
    }
  }
  return true;
}

// im2col address generation. Output position p = (b*oh + oy)*ow + ox, reduction index
// k = (ci*kh + ky)*kw + kx; input element (b, iy, ix, ci) of the NHWC tensor with
// iy = oy*stride - pad + ky, ix = ox*stride - pad + kx; outside the image (padding) or k >= c*kh*kw
// reads 0. b2, the window of a transposed convolution (the BP of a stride-1 convolution as a
// convolution of dY): k = (ky*kw + kx)*c + ci, tap-major, and the window flipped, iy = oy*stride -
// pad + (kh - 1 - ky), ix likewise.
bool ld_conv(Ctx& cx, const Insn& in) {
  namespace f = isa::f_LD_CONV;
  const bool to_b = in.flag(0), transposed = in.flag(1), flipped = in.flag(2);
  if (in.flags() & ~15u) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], in.w[0] & 0xf0000000u);
  if (!check_tile(cx, in, f::bank, f::rows, f::cols, to_b)) return false;
  ConvGeom g;
  if (!decode_geom(cx, in, f::c, g)) return false;
  const uint32_t rows = in[f::rows], cols = in[f::cols];
  const uint32_t np = transposed ? cols : rows, nk = transposed ? rows : cols;
  const uint64_t p0 = in[f::p0], k0 = in[f::k0];
  const uint64_t ohw = static_cast<uint64_t>(g.oh) * g.ow;
  const uint64_t plane = static_cast<uint64_t>(g.h) * g.w * g.c;   // one sample, elements
  const uint64_t last_sample = (p0 + np - 1) / ohw;
  DdrIn src = region(cx, in, f::addr, (last_sample + 1) * plane);
  if (src == nullptr) return false;
  const uint64_t kvol = static_cast<uint64_t>(g.c) * g.kh * g.kw;

  // Per output position: the sample's base and the window's top-left corner; per reduction index:
  // the window offset and channel (-1 beyond K).
  int64_t p_base[kMaxSide];
  int32_t p_iy[kMaxSide], p_ix[kMaxSide];
  int32_t k_ky[kMaxSide], k_kx[kMaxSide], k_ci[kMaxSide];
LDCONV_P:
  for (uint32_t i = 0; i < np; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
    const uint64_t p = p0 + i;
    const uint64_t b = p / ohw, rem = p % ohw;
    p_base[i] = static_cast<int64_t>(b * plane);
    p_iy[i] = static_cast<int32_t>(rem / g.ow) * static_cast<int32_t>(g.stride) - static_cast<int32_t>(g.pad);
    p_ix[i] = static_cast<int32_t>(rem % g.ow) * static_cast<int32_t>(g.stride) - static_cast<int32_t>(g.pad);
  }
LDCONV_K:
  for (uint32_t j = 0; j < nk; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
    const uint64_t k = k0 + j;
    if (k >= kvol) {
      k_ci[j] = -1;
      k_ky[j] = k_kx[j] = 0;
      continue;
    }
    const uint32_t taps = g.kh * g.kw;
    const uint32_t r = static_cast<uint32_t>(flipped ? k / g.c : k % taps);   // the tap ky*kw + kx
    k_ci[j] = static_cast<int32_t>(flipped ? k % g.c : k / taps);
    const int32_t ky = static_cast<int32_t>(r / g.kw), kx = static_cast<int32_t>(r % g.kw);
    k_ky[j] = flipped ? static_cast<int32_t>(g.kh) - 1 - ky : ky;
    k_kx[j] = flipped ? static_cast<int32_t>(g.kw) - 1 - kx : kx;
  }
  BankOut dst = to_b ? cx.buf->b[in[f::bank]] : cx.buf->a[in[f::bank]];
  const int32_t h = static_cast<int32_t>(g.h), w = static_cast<int32_t>(g.w);
  const int64_t c = g.c;
  const isa::ConvPatch pt = isa::conv_patch(in, arch::kConvPatchElems);
  if (pt.fits) return ld_conv_patch(cx, in, g, pt, src, p_base, p_iy, p_ix, k_ky, k_kx, k_ci, dst);
LDCONV_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
LDCONV_COLS:
    for (uint32_t col = 0; col < cols; ++col) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
      const uint32_t i = transposed ? col : r, j = transposed ? r : col;
      const int32_t iy = p_iy[i] + k_ky[j], ix = p_ix[i] + k_kx[j];
      const bool inside = k_ci[j] >= 0 && iy >= 0 && iy < h && ix >= 0 && ix < w;
      dst[r * cols + col] =
          inside ? static_cast<uint16_t>(src[p_base[i] + (static_cast<int64_t>(iy) * w + ix) * c + k_ci[j]]) : uint16_t{0};
    }
  }
  return true;
}

// Compressed N:M lines: entry (line l, group g, slot e) of a matrix with line_groups groups per line
// is entry number E = (l*line_groups + g)*n + e, value at val_addr + E, 4-bit index in nibble E of
// the packed index region at idx_addr (byte E/2, low nibble first; four nibbles per halfword).
bool ld_spw_master(Ctx& cx, const Insn& in);

bool ld_spw(Ctx& cx, const Insn& in) {
  namespace f = isa::f_LD_SPW;
  if (in.flags() & ~3u) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], in.w[0] & 0xfc000000u);
  if (in.flag(1) && !in.flag(0)) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], 1u << 25);   // b1 needs b0
  if (in.flag(0)) return ld_spw_master(cx, in);
  const uint32_t rows = in[f::rows], groups = in[f::groups], n = in[f::n], m = in[f::m];
  const uint32_t line_groups = in[f::line_groups], l0 = in[f::l0], g0 = in[f::g0];
  if (in[f::bank] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, f::bank, arch::kBanks);
  if (rows == 0 || rows > static_cast<uint32_t>(arch::kMaxTileCols)) return cx.bad_field(in, f::rows, arch::kMaxTileCols);
  if (!arch::supported_m(static_cast<int>(m))) return cx.bad_field(in, f::m);
  if (n == 0 || n > m) return cx.bad_field(in, f::n, m);
  if (groups == 0 || groups * m > static_cast<uint32_t>(arch::kMaxTileK))
    return cx.bad_field(in, f::groups, arch::kMaxTileK / m);
  if (line_groups < groups || g0 > line_groups - groups) return cx.bad_field(in, f::line_groups, g0 + groups);
  const uint64_t last = ((static_cast<uint64_t>(l0) + rows - 1) * line_groups + g0 + groups - 1) * n + n - 1;
  DdrIn val = region(cx, in, f::val_addr, last + 1);
  if (val == nullptr) return false;
  DdrIn idx = region(cx, in, f::idx_addr, last / 4 + 1);
  if (idx == nullptr) return false;
  const uint32_t pitch = groups * n;
  BankOut dv = cx.buf->b[in[f::bank]];
  IdxOut di = cx.buf->bidx[in[f::bank]];
LDSPW_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    const uint64_t e0 = ((static_cast<uint64_t>(l0) + r) * line_groups + g0) * n;
    // A line's entries are consecutive: its values and its index halfwords each one run.
    DdrReader<1> vals(val + e0, pitch);
    NibbleReader<2> nibs(idx, e0, pitch);
LDSPW_ENTRIES:
    for (uint32_t j = 0; j < pitch; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
      const uint64_t e = e0 + j;
      const uint32_t nib = nibs.next();
      if (nib >= m) return cx.fail(isa::STATUS_BAD_FIELD, f::idx_addr, in[f::idx_addr], static_cast<uint32_t>(e));
      dv[r * pitch + j] = vals.next();
      di[r * pitch + j] = static_cast<uint8_t>(nib);
    }
  }
  return true;
}

// On-the-fly selection (b0): the same bank contents as the plain LD_SPW of the pre-generated form,
// made from the FP32 master W[cout][k] at val_addr (idx_addr holds k). Groups along K (b1 = 0, the
// W_F lines: line l = row l, element i of group g at l*k + g*m + i) or along Cout (b1 = 1, the W_B
// lines: line l = column l, element i of group g at (g*m + i)*k + l). Each group's m values are
// gathered, ranked with the shared rule (nm_keep_mask) and its n kept values written as BF16 (RNE,
// FTZ: f32_to_bf16_bits) with their in-group indices.
bool ld_spw_master(Ctx& cx, const Insn& in) {
  namespace f = isa::f_LD_SPW;
  const bool along_cout = in.flag(1);
  const uint32_t rows = in[f::rows], groups = in[f::groups], n = in[f::n], m = in[f::m];
  const uint32_t line_groups = in[f::line_groups], l0 = in[f::l0], g0 = in[f::g0];
  const uint64_t k = in[f::idx_addr];
  if (in[f::bank] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, f::bank, arch::kBanks);
  if (rows == 0 || rows > static_cast<uint32_t>(arch::kMaxTileCols)) return cx.bad_field(in, f::rows, arch::kMaxTileCols);
  if (!arch::supported_m(static_cast<int>(m))) return cx.bad_field(in, f::m);
  if (n == 0 || n > m) return cx.bad_field(in, f::n, m);
  if (groups == 0 || groups * m > static_cast<uint32_t>(arch::kMaxTileK))
    return cx.bad_field(in, f::groups, arch::kMaxTileK / m);
  if (line_groups < groups || g0 > line_groups - groups) return cx.bad_field(in, f::line_groups, g0 + groups);
  // The master's row length bounds the lines (along Cout) or the groups of a line (along K).
  const uint64_t line_end = static_cast<uint64_t>(l0) + rows;
  const uint64_t group_end = (static_cast<uint64_t>(g0) + groups) * m;
  if (along_cout && line_end > k) return cx.bad_field(in, f::rows, static_cast<uint32_t>(k));
  if (!along_cout && group_end > k) return cx.bad_field(in, f::groups, static_cast<uint32_t>(k / m));
  const uint64_t last = along_cout ? (group_end - 1) * k + line_end - 1 : (line_end - 1) * k + group_end - 1;
  DdrIn w = region(cx, in, f::val_addr, 2 * (last + 1));
  if (w == nullptr) return false;
  const uint64_t stride = along_cout ? k : 1;   // between the elements of a group
  const uint32_t pitch = groups * n;
  BankOut dv = cx.buf->b[in[f::bank]];
  IdxOut di = cx.buf->bidx[in[f::bank]];
LDSPWM_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    // Along K a line's groups are one run of the master; along Cout a group's elements are a
    // column, one request each.
    const uint64_t l = static_cast<uint64_t>(l0) + r;
    DdrReader<1> line(along_cout ? w : w + 2 * (l * k + static_cast<uint64_t>(g0) * m), along_cout ? 0 : 2ull * groups * m);
LDSPWM_GROUPS:
    for (uint32_t g = 0; g < groups; ++g) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
      const uint64_t gg = static_cast<uint64_t>(g0) + g;
      const uint64_t first = along_cout ? gg * m * k + l : l * k + gg * m;
      float v[kMaxM];
#pragma HLS ARRAY_PARTITION variable = v complete
      for (uint32_t i = 0; i < m; ++i) v[i] = along_cout ? ld_f32(w, first + i * stride) : next_f32(line);
      uint8_t kept[kMaxM];
      nm_indices_of(nm_keep_mask(v, m, n), static_cast<int>(n), kept);   // ascending
      for (uint32_t e = 0; e < n; ++e) {
        dv[r * pitch + g * n + e] = f32_to_bf16_bits(v[kept[e]]);
        di[r * pitch + g * n + e] = kept[e];
      }
    }
  }
  return true;
}

}  // namespace

bool exec_load(Ctx& cx, const Insn& in) {
  switch (in.opcode()) {
    case isa::OP_LD_2D: return ld_2d(cx, in);
    case isa::OP_LD_CONV: return ld_conv(cx, in);
    case isa::OP_LD_SPW: return ld_spw(cx, in);
    default: return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  }
}

}  // namespace sat::kernel
