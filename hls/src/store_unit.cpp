// STORE unit: accumulators -> DRAM. ST_2D writes a C tile with strides (BF16 rounded to nearest
// even, or FP32; optionally adding a per-column FP32 bias first and/or adding into FP32 DRAM);
// ST_COL2IM scatter-adds a C tile indexed like an im2col matrix into an FP32 NHWC tensor (the
// backward of a convolution's input).
#include "kernel.hpp"

namespace sat::kernel {

namespace {

bool check_c_tile(Ctx& cx, const Insn& in, int bank_f, int rows_f, int cols_f) {
  if (in[bank_f] >= static_cast<uint32_t>(arch::kBanks)) return cx.bad_field(in, bank_f, arch::kBanks);
  if (in[rows_f] == 0 || in[rows_f] > static_cast<uint32_t>(arch::kMaxTileRows))
    return cx.bad_field(in, rows_f, arch::kMaxTileRows);
  if (in[cols_f] == 0 || in[cols_f] > static_cast<uint32_t>(arch::kMaxTileCols))
    return cx.bad_field(in, cols_f, arch::kMaxTileCols);
  return true;
}

// One tile row of ST_2D into consecutive elements: one run written and, when adding, one read.
void st_2d_row(DdrOut row, CTileIn c, uint32_t first, uint32_t cols, bool fp32, bool add, bool bias,
               const float* bias_v, bool zeros) {
  const uint64_t halfwords = static_cast<uint64_t>(cols) * (fp32 ? 2 : 1);
  DdrReader<1> old(row, add ? halfwords : 0);
  DdrWriter<1> out(row, halfwords);
ST2D_RUN:
  for (uint32_t j = 0; j < cols; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    float v = zeros ? 0.0f : c[first + j];
    if (bias) v += bias_v[j];
    if (!fp32) {
      put_bf16(out, v);
    } else {
      if (add) v = next_f32(old) + v;
      put_f32(out, v);
    }
  }
}

bool st_2d(Ctx& cx, const Insn& in) {
  namespace f = isa::f_ST_2D;
  if (!check_c_tile(cx, in, f::c_bank, f::rows, f::cols)) return false;
  const bool fp32 = in.flag(0), add = in.flag(1), bias = in.flag(2), lines = in.flag(3), zeros = in.flag(4);
  if (add && !fp32) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], 1u << 25);   // b1 needs b0
  if (zeros && (add || bias)) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], 1u << 28);   // b4 alone
  const uint32_t rows = in[f::rows], cols = in[f::cols];
  const uint64_t rs = in[f::row_stride], cs = in[f::col_stride];
  const uint64_t es = fp32 ? 2 : 1;   // halfwords per element
  // b3: row q = row0 + r is row q % line_rows of line q / line_rows (a phase of a strided tensor).
  // Without it, one line holding every row.
  const uint64_t lr = lines ? in[f::line_rows] : rows, ls = lines ? in[f::line_stride] : 0;
  const uint64_t row0 = lines ? in[f::row0] : 0;
  if (lines && lr == 0) return cx.bad_field(in, f::line_rows);
  if (lines && row0 >= lr) return cx.bad_field(in, f::row0, static_cast<uint32_t>(lr - 1));
  const uint64_t far = isa::lines_far_row(row0, rows, lr, ls, rs);
  DdrOut dst = region(cx, in, f::addr, (far + (cols - 1) * cs + 1) * es);
  if (dst == nullptr) return false;
  DdrIn bp = nullptr;
  if (bias) {
    bp = region(cx, in, f::bias_addr, 2ull * cols);
    if (bp == nullptr) return false;
  }
  // The bias, one read of it for the whole tile.
  float bias_v[arch::kMaxTileCols];
  if (bias) {
    DdrReader<1> br(bp, 2ull * cols);
  ST2D_BIAS:
    for (uint32_t j = 0; j < cols; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
      bias_v[j] = next_f32(br);
    }
  }
  // b4 writes zeros: the C bank is neither requested nor read.
  CTileIn c = zeros ? CTileIn(nullptr) : c_tile(cx, in[f::c_bank], rows, cols);
  uint64_t line_at = 0, pos = row0;   // the current row's line offset and place in it
ST2D_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    const uint64_t row_at = line_at + pos * rs;
    if (++pos == lr) {
      pos = 0;
      line_at += ls;
    }
    if (cs == 1) {
      st_2d_row(dst + row_at * es, c, r * cols, cols, fp32, add, bias, bias_v, zeros);
      continue;
    }
    // A column walk (a transposed tile): one request per element.
ST2D_COLS:
    for (uint32_t j = 0; j < cols; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
      float v = zeros ? 0.0f : c[r * cols + j];
      if (bias) v += bias_v[j];
      const uint64_t o = row_at + j * cs;
      if (!fp32) {
        st_bf16(dst, o, v);
      } else {
        if (add) v = ld_f32(dst, o) + v;
        st_f32(dst, o, v);
      }
    }
  }
  return true;
}

bool st_col2im(Ctx& cx, const Insn& in) {
  namespace f = isa::f_ST_COL2IM;
  if (!check_c_tile(cx, in, f::c_bank, f::rows, f::cols)) return false;
  ConvGeom g;
  if (!decode_geom(cx, in, f::c, g)) return false;
  const uint32_t rows = in[f::rows], cols = in[f::cols];
  const uint64_t p0 = in[f::p0], k0 = in[f::k0];
  const uint64_t ohw = static_cast<uint64_t>(g.oh) * g.ow;
  const uint64_t plane = static_cast<uint64_t>(g.h) * g.w * g.c;
  const uint64_t last_sample = (p0 + rows - 1) / ohw;
  DdrOut dst = region(cx, in, f::addr, (last_sample + 1) * plane * 2);
  if (dst == nullptr) return false;
  const uint64_t kvol = static_cast<uint64_t>(g.c) * g.kh * g.kw;
  CTileIn c = c_tile(cx, in[f::c_bank], rows, cols);
  static int32_t k_ky[arch::kMaxTileCols], k_kx[arch::kMaxTileCols], k_ci[arch::kMaxTileCols];
COL2IM_K:
  for (uint32_t j = 0; j < cols; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    const uint64_t k = k0 + j;
    k_ci[j] = k < kvol ? static_cast<int32_t>(k / (g.kh * g.kw)) : -1;
    const uint32_t r = static_cast<uint32_t>(k % (g.kh * g.kw));
    k_ky[j] = static_cast<int32_t>(r / g.kw);
    k_kx[j] = static_cast<int32_t>(r % g.kw);
  }
  const int32_t h = static_cast<int32_t>(g.h), w = static_cast<int32_t>(g.w);
COL2IM_ROWS:
  for (uint32_t r = 0; r < rows; ++r) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
    const uint64_t p = p0 + r;
    const uint64_t b = p / ohw, rem = p % ohw;
    const int32_t iy0 = static_cast<int32_t>(rem / g.ow) * static_cast<int32_t>(g.stride) - static_cast<int32_t>(g.pad);
    const int32_t ix0 = static_cast<int32_t>(rem % g.ow) * static_cast<int32_t>(g.stride) - static_cast<int32_t>(g.pad);
    const int64_t base = static_cast<int64_t>(b * plane);
COL2IM_COLS:
    for (uint32_t j = 0; j < cols; ++j) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 128
#pragma HLS DEPENDENCE variable = dst inter false
      // Every element of the tile is taken, padding too: the accumulators arrive as a stream in
      // tile order in the synthesised kernel (docs/hls-dataflow.md).
      const float cv = c[r * cols + j];
      const int32_t iy = iy0 + k_ky[j], ix = ix0 + k_kx[j];
      if (k_ci[j] < 0 || iy < 0 || iy >= h || ix < 0 || ix >= w) continue;   // padding: dropped
      const uint64_t o = static_cast<uint64_t>(base + (static_cast<int64_t>(iy) * w + ix) * g.c + k_ci[j]);
      st_f32(dst, o, ld_f32(dst, o) + cv);
    }
  }
  return true;
}

}  // namespace

bool exec_store(Ctx& cx, const Insn& in) {
  switch (in.opcode()) {
    case isa::OP_ST_2D: return st_2d(cx, in);
    case isa::OP_ST_COL2IM: return st_col2im(cx, in);
    default: return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  }
}

}  // namespace sat::kernel
