// The input gradient of a stride-1 convolution as a convolution of its output gradient
// (layer_ops.hpp, "transposed BP"): the rows of dY lowered for a kernel flipped in both directions,
// and the weight forms rearranged to match, so that one product writes the BF16 input gradient.
// No FP32 rows of k*k*cin columns are written and no col2im reads them back: on ResNet-18 those two
// passes moved 8 GiB per step at batch 512 (docs/cuda.md).
//
// For stride 1, dX[b][iy][ix][c] = sum over (ky, kx, co) of W[co][c, ky, kx] dY[b][iy+p-ky][ix+p-kx][co].
// With ky' = k-1-ky this is a convolution of dY padded by p' = k-1-p with the kernel
//   W'[c][(ky', kx', co)] = W[co][(c, k-1-ky', k-1-kx')],
// its columns channel-minor so that W_B's groups of M along Cout stay groups of M consecutive
// positions along W''s lines: W' in N:M form is W_B's kept entries, moved, never selected again.
#include <algorithm>
#include <cstdint>
#include <string>

#include "common.cuh"
#include "layer_ops.hpp"
#include "ops.hpp"

namespace sat::cuda {

namespace {

// One row of the lowered dY per threadIdx.y, its 16-byte chunks (8 channels) over threadIdx.x.
// cout8 = cout / 8 chunks per kernel position; ld8 chunks per row.
__global__ void dgrad_rows_vec_kernel(const uint4* dy, ConvGeometry g, int nq, int cout8, uint4* out, int ld8) {
  const int q = blockIdx.x * blockDim.y + threadIdx.y;
  if (q >= nq) return;
  const int h = static_cast<int>(g.h), w = static_cast<int>(g.w), k = static_cast<int>(g.k);
  const int oh = static_cast<int>(g.oh), ow = static_cast<int>(g.ow), pt = k - 1 - static_cast<int>(g.p);
  const int hw = h * w, b = q / hw, r = q - b * hw, iy = r / w, ix = r - iy * w, kk = k * k;
  uint4* row = out + static_cast<int64_t>(q) * ld8;
  for (int j = threadIdx.x; j < ld8; j += blockDim.x) {
    uint4 v = make_uint4(0, 0, 0, 0);
    const int seg = j / cout8;
    if (seg < kk) {
      const int c8 = j - seg * cout8, ky = seg / k, kx = seg - ky * k;
      const int oy = iy - pt + ky, ox = ix - pt + kx;
      if (oy >= 0 && oy < oh && ox >= 0 && ox < ow) v = dy[((b * oh + oy) * ow + ox) * cout8 + c8];
    }
    row[j] = v;
  }
}

// The same, one element at a time (cout % 8 != 0 or unaligned buffers).
__global__ void dgrad_rows_kernel(const uint16_t* dy, ConvGeometry g, int nq, int cout, uint16_t* out, int ld) {
  const int q = blockIdx.x * blockDim.y + threadIdx.y;
  if (q >= nq) return;
  const int h = static_cast<int>(g.h), w = static_cast<int>(g.w), k = static_cast<int>(g.k);
  const int oh = static_cast<int>(g.oh), ow = static_cast<int>(g.ow), pt = k - 1 - static_cast<int>(g.p);
  const int hw = h * w, b = q / hw, r = q - b * hw, iy = r / w, ix = r - iy * w, kk = k * k;
  uint16_t* row = out + static_cast<int64_t>(q) * ld;
  for (int j = threadIdx.x; j < ld; j += blockDim.x) {
    uint16_t v = 0;
    const int seg = j / cout;
    if (seg < kk) {
      const int co = j - seg * cout, ky = seg / k, kx = seg - ky * k;
      const int oy = iy - pt + ky, ox = ix - pt + kx;
      if (oy >= 0 && oy < oh && ox >= 0 && ox < ow) v = dy[((b * oh + oy) * ow + ox) * cout + co];
    }
    row[j] = v;
  }
}

// dY [nb][oh][ow][per units] spread onto the dilated map [nb][dh][dw][per units]: pixel (y, x) is
// dY's (y/s, x/s) where both divide, zero elsewhere. One unit (8 channels or one) per thread.
template <typename T>
__global__ void dilate_kernel(const T* dy, int n, int per, int dh, int dw, int s, int oh, int ow, T* out) {
  SAT_GRID_LOOP(i, n) {
    const int u = i % per, pix = i / per, x = pix % dw, r = pix / dw, y = r % dh, b = r / dh;
    T v{};
    if (y % s == 0 && x % s == 0) v = dy[((static_cast<int64_t>(b) * oh + y / s) * ow + x / s) * per + u];
    out[i] = v;
  }
}

// W''s line c, position group j (of `per_seg` groups per kernel position) comes from W_B's line
// c*kk + (kk-1-seg), group j - seg*per_seg. Returns that line and group.
__device__ __forceinline__ int2 source_of(int c, int j, int kk, int per_seg) {
  const int seg = j / per_seg;
  return make_int2(c * kk + (kk - 1 - seg), j - seg * per_seg);
}

// The 2:4 values: one 32-bit word (two BF16) per line and group of 4; cg4 = cout / 4 groups per
// kernel position. Padding lines and positions get zeros.
__global__ void dgrad_v24_kernel(const uint32_t* src, int src_ld4, uint32_t* dst, int dst_ld4, int n, int cin,
                                 int kk, int cg4) {
  SAT_GRID_LOOP(i, n) {
    const int c = i / dst_ld4, j = i - c * dst_ld4;
    uint32_t v = 0;
    if (c < cin && j < kk * cg4) {
      const int2 s = source_of(c, j, kk, cg4);
      v = src[static_cast<int64_t>(s.x) * src_ld4 + s.y];
    }
    dst[i] = v;
  }
}

// The 2:4 metadata, one word (8 groups) per thread, each group's 4-bit code read from W_B's word
// (sp24_meta_locate); padding groups get positions 0 and 1 (code 0x4).
__global__ void dgrad_meta_kernel(const uint32_t* src, int src_tpr, uint32_t* dst, int dst_tpr, int n, int cin, int kk,
                                  int cg4, int layout) {
  SAT_GRID_LOOP(i, n) {
    const int t = i & 15, tile = i >> 4, lt = tile / dst_tpr, pt = tile - lt * dst_tpr;
    uint32_t word = 0;
    for (int slot = 0; slot < 8; ++slot) {
      const MetaSlot ms = sp24_meta_slot(layout, t, slot);
      const int c = lt * 16 + ms.line, j = pt * 8 + ms.group;
      uint32_t code = 0x4;
      if (c < cin && j < kk * cg4) {
        const int2 s = source_of(c, j, kk, cg4);
        const MetaLocation loc = sp24_meta_locate(layout, s.x & 15, s.y & 7);
        code = (src[((static_cast<int64_t>(s.x >> 4) * src_tpr) + (s.y >> 3)) * 16 + loc.t] >> loc.bit) & 0xF;
      }
      word |= code << ms.bit;
    }
    dst[i] = word;
  }
}

// The NMCompressed form (docs/nm-format.md): entry e of W' is entry j of group g' of line c; its
// source entry in W_B. groups_b = cout / M groups per kernel position.
__device__ __forceinline__ int source_entry(int e, int nn, int kk, int groups_b) {
  const int j = e % nn, gl = e / nn, groups = kk * groups_b, c = gl / groups, g = gl - c * groups;
  const int2 s = source_of(c, g, kk, groups_b);
  return (s.x * groups_b + s.y) * nn + j;
}

__global__ void dgrad_values_kernel(const uint16_t* src, uint16_t* dst, int nnz, int nn, int kk, int groups_b) {
  SAT_GRID_LOOP(e, nnz) dst[e] = src[source_entry(e, nn, kk, groups_b)];
}

// Two 4-bit indices per byte, low nibble first: one thread per byte, so no two threads share one.
__global__ void dgrad_index_kernel(const uint8_t* src, uint8_t* dst, int nnz, int nn, int kk, int groups_b) {
  SAT_GRID_LOOP(b, (nnz + 1) / 2) {
    uint8_t out = 0;
    for (int half = 0; half < 2; ++half) {
      const int e = 2 * b + half;
      if (e >= nnz) break;
      const int s = source_entry(e, nn, kk, groups_b);
      out |= static_cast<uint8_t>(((src[s >> 1] >> ((s & 1) * 4)) & 0xF) << (half * 4));
    }
    dst[b] = out;
  }
}

// Dense: out[c][(seg, co)] = w[co][c*kk + kk-1-seg].
__global__ void dgrad_dense_kernel(const uint16_t* w, uint16_t* out, int n, int cin, int kk, int cout) {
  SAT_GRID_LOOP(i, n) {
    const int c = i / (kk * cout), r = i - c * kk * cout, seg = r / cout, co = r - seg * cout;
    out[i] = w[(co * cin + c) * kk + (kk - 1 - seg)];
  }
}

}  // namespace

bool dgrad_applies(const ConvGeometry& g) {
  return g.s == 1 && g.k > 1 && g.p <= g.k - 1 && g.oh == g.h + 2 * g.p - g.k + 1 && g.ow == g.w + 2 * g.p - g.k + 1;
}

ConvGeometry dgrad_geometry(const ConvGeometry& g, int64_t cout) {
  return ConvGeometry{cout, g.oh, g.ow, g.k, 1, g.k - 1 - g.p, g.h, g.w};
}

bool strided_dgrad_applies(const ConvGeometry& g) {
  return g.s > 1 && g.p <= g.k - 1 && g.oh == (g.h + 2 * g.p - g.k) / g.s + 1 && g.ow == (g.w + 2 * g.p - g.k) / g.s + 1;
}

ImplicitConv dgrad_implicit(const ConvGeometry& g, int64_t cout, int64_t nb) {
  ImplicitConv ic;   // stride 1: dY itself
  ic.nb = nb;
  ic.ch = cout;
  ic.ih = (g.oh - 1) * g.s + 1;
  ic.iw = (g.ow - 1) * g.s + 1;
  ic.k = g.k;
  ic.pad = g.k - 1 - g.p;
  ic.oh = g.h;   // the rows and columns past the last window's reach read zeros
  ic.ow = g.w;
  return ic;
}

void dilate_nhwc(const uint16_t* dy, const ConvGeometry& g, int64_t cout, int64_t nb, uint16_t* out, cudaStream_t s) {
  if (!strided_dgrad_applies(g)) throw Error("dilate_nhwc: only strided convolutions with padding below the kernel size");
  const int64_t dh = (g.oh - 1) * g.s + 1, dw = (g.ow - 1) * g.s + 1;
  const bool vec = cout % 8 == 0 && reinterpret_cast<uintptr_t>(dy) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int64_t per = vec ? cout / 8 : cout, n = nb * dh * dw * per;
  const unsigned grid = grid_blocks32(n, 256, "dilate_nhwc");
  if (vec) {
    dilate_kernel<uint4><<<grid, 256, 0, s>>>(reinterpret_cast<const uint4*>(dy), static_cast<int>(n), static_cast<int>(per),
                                              static_cast<int>(dh), static_cast<int>(dw), static_cast<int>(g.s),
                                              static_cast<int>(g.oh), static_cast<int>(g.ow), reinterpret_cast<uint4*>(out));
  } else {
    dilate_kernel<uint16_t><<<grid, 256, 0, s>>>(dy, static_cast<int>(n), static_cast<int>(per), static_cast<int>(dh),
                                                  static_cast<int>(dw), static_cast<int>(g.s), static_cast<int>(g.oh),
                                                  static_cast<int>(g.ow), out);
  }
  SAT_CUDA_LAUNCHED("dilate_kernel");
}

void dgrad_rows_nhwc(const uint16_t* dy, const ConvGeometry& g, int64_t cout, int64_t nb, uint16_t* out, int64_t ld,
                     cudaStream_t s) {
  if (!dgrad_applies(g)) throw Error("dgrad_rows_nhwc: only stride-1 convolutions with padding below the kernel size");
  if (ld < g.k * g.k * cout || ld % 8 != 0) {
    throw Error("dgrad_rows_nhwc: the leading dimension must be a multiple of 8 and at least k*k*cout");
  }
  const int64_t nq = nb * g.h * g.w;
  check32(nq * ld, "dgrad_rows_nhwc");
  check32(nb * g.oh * g.ow * cout, "dgrad_rows_nhwc");
  const dim3 block(32, 8);
  const unsigned grid = static_cast<unsigned>(ceil_div(nq, block.y));
  if (cout % 8 == 0 && reinterpret_cast<uintptr_t>(dy) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    dgrad_rows_vec_kernel<<<grid, block, 0, s>>>(reinterpret_cast<const uint4*>(dy), g, static_cast<int>(nq),
                                                 static_cast<int>(cout / 8), reinterpret_cast<uint4*>(out),
                                                 static_cast<int>(ld / 8));
    SAT_CUDA_LAUNCHED("dgrad_rows_vec_kernel");
  } else {
    dgrad_rows_kernel<<<grid, block, 0, s>>>(dy, g, static_cast<int>(nq), static_cast<int>(cout), out,
                                             static_cast<int>(ld));
    SAT_CUDA_LAUNCHED("dgrad_rows_kernel");
  }
}

std::string dgrad_form_unusable(const DevNM& bwd, const ConvGeometry& g) {
  if (bwd.axis != Axis::Cout) return "the form is not pruned along Cout";
  if (bwd.lines != g.kdim()) return "the form's lines are not cin*k*k";
  if (bwd.sp24 && bwd.len % 4 != 0) return "a 2:4 re-pack needs cout divisible by 4";
  return {};
}

DevNM alloc_dgrad_form(const DevNM& bwd, const ConvGeometry& g) {
  if (std::string why = dgrad_form_unusable(bwd, g); !why.empty()) throw Error("alloc_dgrad_form: " + why);
  return alloc_devnm(g.cin, g.k * g.k * bwd.len, bwd.nm, Axis::K, bwd.sp24);
}

void dgrad_form(const DevNM& bwd, const ConvGeometry& g, DevNM& out, cudaStream_t s) {
  if (std::string why = dgrad_form_unusable(bwd, g); !why.empty()) throw Error("dgrad_form: " + why);
  const int64_t cout = bwd.len, kk = g.k * g.k;
  if (out.lines != g.cin || out.len != kk * cout || out.nm.n != bwd.nm.n || out.nm.m != bwd.nm.m ||
      out.sp24 != bwd.sp24 || out.axis != Axis::K) {
    throw Error("dgrad_form: the output form was not allocated by alloc_dgrad_form for this weight");
  }
  const int nn = bwd.nm.n, groups_b = static_cast<int>(cout / bwd.nm.m), nnz = static_cast<int>(out.nnz());
  check32(out.nnz(), "dgrad_form");
  dgrad_values_kernel<<<grid_blocks32(nnz, 256, "dgrad_form"), 256, 0, s>>>(bwd.values, out.values, nnz, nn,
                                                                            static_cast<int>(kk), groups_b);
  SAT_CUDA_LAUNCHED("dgrad_values_kernel");
  dgrad_index_kernel<<<grid_blocks32((nnz + 1) / 2, 256, "dgrad_form"), 256, 0, s>>>(
      bwd.index, out.index, nnz, nn, static_cast<int>(kk), groups_b);
  SAT_CUDA_LAUNCHED("dgrad_index_kernel");
  if (!out.sp24) return;
  const int cg4 = static_cast<int>(cout / 4), cin = static_cast<int>(g.cin);
  const int64_t nv = out.lines_pad * (out.len_pad / 4);
  dgrad_v24_kernel<<<grid_blocks32(nv, 256, "dgrad_form"), 256, 0, s>>>(
      reinterpret_cast<const uint32_t*>(bwd.v24), static_cast<int>(bwd.len_pad / 4), reinterpret_cast<uint32_t*>(out.v24),
      static_cast<int>(out.len_pad / 4), static_cast<int>(nv), cin, static_cast<int>(kk), cg4);
  SAT_CUDA_LAUNCHED("dgrad_v24_kernel");
  const int64_t nm = out.lines_pad / 16 * (out.len_pad / 32) * 16;
  dgrad_meta_kernel<<<grid_blocks32(nm, 256, "dgrad_form"), 256, 0, s>>>(
      bwd.meta24, static_cast<int>(bwd.len_pad / 32), out.meta24, static_cast<int>(out.len_pad / 32), static_cast<int>(nm),
      cin, static_cast<int>(kk), cg4, sp24_meta_layout());
  SAT_CUDA_LAUNCHED("dgrad_meta_kernel");
}

void dgrad_dense(const uint16_t* w, const ConvGeometry& g, int64_t cout, uint16_t* out, cudaStream_t s) {
  const int64_t kk = g.k * g.k, n = g.cin * kk * cout;
  dgrad_dense_kernel<<<grid_blocks32(n, 256, "dgrad_dense"), 256, 0, s>>>(w, out, static_cast<int>(n),
                                                                          static_cast<int>(g.cin), static_cast<int>(kk),
                                                                          static_cast<int>(cout));
  SAT_CUDA_LAUNCHED("dgrad_dense_kernel");
}

}  // namespace sat::cuda
