// PGEN unit: pre-generation of the N:M sparse forms from the FP32 master weights W[cout][k]
// (DESIGN §3): top-N selection per group of M along K (b0 = 0, the forward form W_F) or along Cout
// (b0 = 1, the backward form W_B), with the rule every backend shares (sat/nm_select.hpp,
// nm_keep_masks), written as the NMCompressed layout (b1: BF16 values + packed 4-bit indices, lines
// = rows for K, columns for Cout, entry (l, g, j) at (l * groups + g) * n + j) and/or (b2) as a
// masked dense BF16 [cout][k] (a plain BF16 copy when n == m), and/or (b3) the same transposed,
// [k][cout], at dense_t_addr: the operand a dense BP product reads as contiguous lines.
#include "kernel.hpp"

namespace sat::kernel {

namespace {

// Appends entry e of a compressed form written in entry order: its BF16 value, and its in-group
// index into the packed nibbles (a halfword leaves when its fourth nibble is in).
// Both are written in order, through a DdrWriter each.
template <typename V, typename I>
inline void put_entry(V& dv, I& di, uint64_t& e, uint32_t& nib_acc, uint16_t value, uint32_t index) {
  dv.put(value);
  nib_acc |= index << (4 * (e & 3));
  if ((e & 3) == 3) {
    di.put(static_cast<uint16_t>(nib_acc));
    nib_acc = 0;
  }
  ++e;
}

// PGEN b4: M rows of the master at a time into the block buffer (one read of each weight), then
// W_F of those rows (groups along K, entries in the plain loop's order) and W_B's group of them in
// every column (groups along Cout, line = column). A W_B index halfword holds entries of up to four
// blocks, so its nibbles are merged into what is there; the last halfword's unused nibbles are
// cleared, as the plain loop leaves them.
bool pgen_both(Ctx& cx, const Insn& in, DdrIn w, DdrOut dv, DdrOut di, uint64_t cout, uint64_t k, uint32_t n,
               uint32_t m) {
  namespace f = isa::f_PGEN;
  if (cout % m != 0) return cx.bad_field(in, f::cout, m);
  if (static_cast<uint64_t>(m) * k > static_cast<uint64_t>(arch::kPgenBlockElems))
    return cx.bad_field(in, f::k, static_cast<uint32_t>(arch::kPgenBlockElems / m));
  const uint64_t entries = cout * k / m * n, bgroups = cout / m;
  DdrOut bv = region(cx, in, f::val_b_addr, entries);
  if (bv == nullptr) return false;
  DdrOut bi = region(cx, in, f::idx_b_addr, (entries + 3) / 4);
  if (bi == nullptr) return false;
  static float blk[arch::kPgenBlockElems];
  uint64_t e = 0;
  uint32_t nib_acc = 0;
  // The master and W_F are walked in order; W_B's entries of a block are spread over every line
  // and its index halfwords are merged, so those stay single accesses.
  DdrReader<1> ws(w, 2 * cout * k);
  DdrWriter<1> fv(dv, entries);
  DdrWriter<2> fi(di, (entries + 3) / 4);
PGENB_BLOCKS:
  for (uint64_t rb = 0; rb < bgroups; ++rb) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
  PGENB_READ:
    for (uint64_t i = 0; i < m * k; ++i) {
#pragma HLS PIPELINE II = 1
      blk[i] = next_f32(ws);
    }
  PGENB_FWD:
    for (uint64_t r = 0; r < m; ++r) {
      for (uint64_t g = 0; g < k / m; ++g) {
#pragma HLS PIPELINE II = 1
        const uint32_t keep = nm_keep_mask(&blk[r * k + g * m], m, n);
        uint8_t kept[kMaxM];
        nm_indices_of(keep, static_cast<int>(n), kept);
        for (uint32_t j = 0; j < n; ++j) put_entry(fv, fi, e, nib_acc, f32_to_bf16_bits(blk[r * k + g * m + kept[j]]), kept[j]);
      }
    }
  PGENB_BWD:
    for (uint64_t l = 0; l < k; ++l) {
#pragma HLS PIPELINE II = 1
      float v[kMaxM];
#pragma HLS ARRAY_PARTITION variable = v complete
      for (uint32_t i = 0; i < m; ++i) v[i] = blk[i * k + l];
      const uint32_t keep = nm_keep_mask(v, m, n);
      uint8_t kept[kMaxM];
      nm_indices_of(keep, static_cast<int>(n), kept);
      for (uint32_t j = 0; j < n; ++j) {
        const uint64_t eb = (l * bgroups + rb) * n + j;
        bv[eb] = f32_to_bf16_bits(v[kept[j]]);
        const uint32_t sh = 4 * static_cast<uint32_t>(eb & 3);
        const uint16_t old = bi[eb >> 2];
        bi[eb >> 2] = static_cast<uint16_t>((old & ~(0xfu << sh)) | static_cast<uint32_t>(kept[j]) << sh);
      }
    }
  }
  if ((e & 3) != 0) fi.put(static_cast<uint16_t>(nib_acc));
  if ((entries & 3) != 0) {
    const uint16_t last = bi[entries >> 2];
    bi[entries >> 2] = static_cast<uint16_t>(last & ((1u << (4 * (entries & 3))) - 1));
  }
  return true;
}

}  // namespace

bool exec_pgen(Ctx& cx, const Insn& in) {
  namespace f = isa::f_PGEN;
  if (in.opcode() != isa::OP_PGEN) return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  const bool along_cout = in.flag(0), compressed = in.flag(1), dense = in.flag(2), transposed = in.flag(3);
  const bool both = in.flag(4);
  if (in.flags() & ~31u) return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], in.w[0] & 0xe0000000u);
  // b4 (W_F and W_B from one read) goes with the compressed W_F alone.
  if (both && (!compressed || along_cout || dense || transposed))
    return cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], 1u << (24 + 4));
  const uint64_t cout = in[f::cout], k = in[f::k];
  const uint32_t n = in[f::n], m = in[f::m];
  if (cout == 0) return cx.bad_field(in, f::cout);
  if (k == 0) return cx.bad_field(in, f::k);
  if (m == 0) return cx.bad_field(in, f::m);
  if (n == 0 || n > m) return cx.bad_field(in, f::n, m);
  const bool copy = n == m && !compressed;   // plain BF16 copy: any m
  const bool masked = dense || transposed;
  if (!copy) {
    if (!arch::supported_m(static_cast<int>(m))) return cx.bad_field(in, f::m);
    if ((along_cout ? cout : k) % m != 0) return cx.bad_field(in, along_cout ? f::cout : f::k, m);
  }
  const uint64_t total = cout * k;
  DdrIn w = region(cx, in, f::w, 2 * total);
  if (w == nullptr) return false;
  DdrOut dv = nullptr;
  DdrOut di = nullptr;
  DdrOut dd = nullptr;
  DdrOut dt = nullptr;
  const uint64_t entries = copy ? 0 : total / m * n;
  if (compressed) {
    dv = region(cx, in, f::val_addr, entries);
    if (dv == nullptr) return false;
    di = region(cx, in, f::idx_addr, (entries + 3) / 4);
    if (di == nullptr) return false;
  }
  if (dense) {
    dd = region(cx, in, f::dense_addr, total);
    if (dd == nullptr) return false;
  }
  if (transposed) {
    dt = region(cx, in, f::dense_t_addr, total);
    if (dt == nullptr) return false;
  }
  if (both) return pgen_both(cx, in, w, dv, di, cout, k, n, m);
  if (copy) {
    DdrReader<1> ws(w, 2 * total);
    DdrWriter<1> ds(dd, dense ? total : 0);
PGEN_COPY:
    for (uint64_t i = 0; i < total; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1048576
      const uint16_t v = f32_to_bf16_bits(next_f32(ws));
      if (dense) ds.put(v);
      if (transposed) dt[i % k * cout + i / k] = v;   // a column walk: one request each
    }
    return true;
  }
  const uint64_t lines = along_cout ? k : cout, len = along_cout ? cout : k;
  const uint64_t groups = len / m;
  const uint64_t stride = along_cout ? k : 1;        // between elements of a group
  uint64_t e = 0;
  uint32_t nib_acc = 0;
  // Along K the master is walked in order (along Cout a group is a column: single accesses); the
  // compressed form is written in order either way. The masked dense forms stay single accesses
  // (the write links go to the compressed form; dense and transposed are rarely asked together
  // with it).
  DdrReader<1> ws(w, along_cout ? 0 : 2 * total);
  DdrWriter<1> cv(dv, compressed ? entries : 0);
  DdrWriter<2> ci(di, compressed ? (entries + 3) / 4 : 0);
PGEN_LINES:
  for (uint64_t l = 0; l < lines; ++l) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
PGEN_GROUPS:
    for (uint64_t g = 0; g < groups; ++g) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
      float v[kMaxM];
#pragma HLS ARRAY_PARTITION variable = v complete
      const uint64_t first = along_cout ? g * m * k + l : l * k + g * m;
      for (uint32_t i = 0; i < m; ++i) v[i] = along_cout ? ld_f32(w, first + i * stride) : next_f32(ws);
      const uint32_t keep = nm_keep_mask(v, m, n);
      if (masked) {
        for (uint32_t i = 0; i < m; ++i) {
          const uint64_t at = first + i * stride;
          const uint16_t b = ((keep >> i) & 1u) ? f32_to_bf16_bits(v[i]) : uint16_t{0};
          if (dense) dd[at] = b;
          if (transposed) dt[at % k * cout + at / k] = b;
        }
      }
      if (compressed) {
        uint8_t kept[kMaxM];
        nm_indices_of(keep, static_cast<int>(n), kept);   // ascending in-group indices
        for (uint32_t j = 0; j < n; ++j) put_entry(cv, ci, e, nib_acc, f32_to_bf16_bits(v[kept[j]]), kept[j]);
      }
    }
  }
  if (compressed && (e & 3) != 0) ci.put(static_cast<uint16_t>(nib_acc));
  return true;
}

}  // namespace sat::kernel
