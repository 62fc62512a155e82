// N:M pre-generation on the GPU: one pass over the FP32 master weights W[cout][k] that produces the
// forward form (groups along K), the backward form (groups along Cout), their re-packed 2:4 forms
// for the sparse tensor cores, the forward keep-mask and a dense BF16 copy. Each block stages a
// 64 x 64 tile of W in shared memory once (coalesced 16-byte loads) and selects along both axes
// from there: every thread selects 16 consecutive weights of one row (K axis) and 16 consecutive
// weights of one column (Cout axis), writes the element-wise outputs (mask, dense copy, 2:4 values)
// straight from registers as 16-byte stores, and stages the compressed entries and 2:4 codes, which
// the block then writes as contiguous runs. The selection rule is the N:M core's
// (sat/nm_select.hpp, nm_keep_masks), compiled here for the device; nothing in this file decides
// which weights are kept.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "ops.hpp"
#include "sat/arch/nm_select.hpp"
#include "sat/arch/sgd_rule.hpp"

namespace sat::cuda {

namespace {

constexpr int kT = 64;           // tile edge (rows of W = Cout, columns = K); a multiple of every M
constexpr int kThreads = 256;    // = (64 lines x 4 chunks of 16) per axis: one chunk per thread per axis
constexpr int kChunk = 16;       // weights one thread selects along one axis (whole groups, M <= 16)
constexpr int kStage = 64;       // staged compressed entries per line of a tile (>= 64 / M * N)

struct FormArgs {                // one pruned axis, flattened for the kernel
  uint16_t* values = nullptr;
  uint8_t* index = nullptr;
  uint16_t* v24 = nullptr;
  uint32_t* meta24 = nullptr;
  int64_t groups = 0, len_pad = 0;
};

struct PregenArgs {
  const float* w;
  int64_t cout, k;
  float* w_out;                      // update_pregen: = w, updated in place by u first; else null
  SgdArgs u;
  int n;
  FormArgs fwd, bwd;
  bool want_fwd, want_bwd, need_k;   // need_k: selection along K (fwd, mask or pruned dense)
  uint8_t* mask_f;
  uint16_t* dense;
  bool dense_pruned;
  int meta_layout;
};

struct Smem {
  float tile[kT * kT];               // swizzled (tile_at)
  uint16_t sv[2][kT][kStage];        // staged values of each line's run: [0] forward, [1] backward
  uint8_t si[2][kT][kStage];         // staged in-group indices, one per byte
  uint8_t codes[2][kT][16];          // 2:4 codes per line and group of 4
};

// Shared-memory address of tile element (row, col). The 16-byte chunk index of the row is XORed
// with swz(row), so that (a) a warp storing two rows of 16-byte chunks, (b) 8 rows reading the same
// 16-byte chunk, and (c) 32 threads reading one element of 8 columns x 4 row blocks of 16 each hit
// distinct banks.
__device__ __forceinline__ int swz(int row) { return (row & 7) ^ (((row >> 4) & 3) << 1); }
__device__ __forceinline__ int tile_at(int row, int col) {
  return row * kT + (((col >> 2) ^ swz(row)) << 2) + (col & 3);
}

// Keep bits of 16 consecutive weights (kChunk / kM whole groups) by the N:M core's rule.
template <int kM>
__device__ __forceinline__ uint32_t select_chunk(const float (&v)[kChunk], int n) {
  uint32_t bits = 0;
#pragma unroll
  for (int g = 0; g < kChunk / kM; ++g) {   // one group at a time: fewer live keys, more blocks per SM
    uint32_t keep;
    nm_keep_masks<kM, 1>(&v[g * kM], 1, 0, kM, n, &keep);
    bits |= keep << (g * kM);
  }
  return bits;
}

// Keep bits of the groups of a chunk that lie inside the weight (groups never straddle its edge).
template <int kM>
__device__ __forceinline__ uint32_t valid_groups(int first, int limit) {
  uint32_t bits = 0;
#pragma unroll
  for (int g = 0; g < kChunk / kM; ++g) {
    if (first + g * kM < limit) bits |= ((kM >= 32 ? ~0u : (1u << kM) - 1)) << (g * kM);
  }
  return bits;
}

// Two FP32 -> BF16 conversions (low half = lo), bit-identical to sat::f32_to_bf16_bits: the hardware's
// packed round-to-nearest-even conversion, which agrees with it for every input except subnormals
// (flushed to signed zero here) and NaNs (payload kept here); a pair holding one of those takes the
// scalar path.
__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) {
  const uint32_t al = __float_as_uint(lo) & 0x7fffffffu, ah = __float_as_uint(hi) & 0x7fffffffu;
  const bool special = al - 1u < 0x007fffffu || al > 0x7f800000u || ah - 1u < 0x007fffffu || ah > 0x7f800000u;
  if (special) {
    return static_cast<uint32_t>(sat::f32_to_bf16_bits(lo)) | (static_cast<uint32_t>(sat::f32_to_bf16_bits(hi)) << 16);
  }
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);   // .x = lo in the low half
  return *reinterpret_cast<const uint32_t*>(&h);
}

// The 2:4 re-pack of one group of 4: kq = its kept flags (at most 2 set), lo = its BF16 values 0
// and 1, hi = values 2 and 3. Two values (a zero where fewer than 2 are kept, its position chosen so
// that positions ascend) as one 32-bit word, and the 4-bit code (first position in bits 0-1, second
// in bits 2-3). Branch-free: the code of every kq comes from one 64-bit table (4 bits per kq:
// none kept -> 0,1; one kept at i -> i,3, or 2,3 when i = 3; two -> their positions), the values
// from one byte permute, the zero padding from a mask.
__device__ __forceinline__ uint32_t repack4(uint32_t kq, uint32_t lo, uint32_t hi, uint32_t* packed) {
  constexpr uint64_t kCodes = 0xe0dce098e4dc4ull;
  const uint32_t code = static_cast<uint32_t>(kCodes >> (4 * kq)) & 15u;
  const uint32_t i0 = code & 3u, i1 = code >> 2;
  const uint32_t sel = (i0 * 0x22u + 0x10u) | ((i1 * 0x22u + 0x10u) << 8);
  const uint32_t mask = (((kq >> i0) & 1u) ? 0x0000ffffu : 0u) | (((kq >> i1) & 1u) ? 0xffff0000u : 0u);
  *packed = __byte_perm(lo, hi, sel) & mask;
  return code;
}

// One axis of one thread's chunk: the 2:4 values (one 16-byte store at line, pos0), the codes and
// the compressed entries into shared memory. keep: 16 keep bits; bf: the 16 BF16 values in pairs.
template <int kM>
__device__ __forceinline__ void chunk_forms(const FormArgs& f, bool want, uint32_t keep, const uint32_t (&bf)[8],
                                            int64_t line, int64_t pos0, int lt, int chunk, int n,
                                            uint8_t (*codes)[16], uint16_t (*sv)[kStage], uint8_t (*si)[kStage]) {
  if (!want) return;
  if (f.v24) {
    uint32_t packed[4], code = 0;
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      const uint32_t c = repack4((keep >> (4 * h)) & 15u, bf[2 * h], bf[2 * h + 1], &packed[h]);
      code |= c << (8 * h);
    }
    *reinterpret_cast<uint4*>(f.v24 + line * (f.len_pad / 2) + pos0 / 2) =
        make_uint4(packed[0], packed[1], packed[2], packed[3]);
    *reinterpret_cast<uint32_t*>(&codes[lt][4 * chunk]) = code;
  }
  // Compressed entries in ascending position: each group holds exactly n kept weights.
  uint16_t* v = &sv[lt][chunk * (kChunk / kM) * n];
  uint8_t* ix = &si[lt][chunk * (kChunk / kM) * n];
  int j = 0;
#pragma unroll
  for (int i = 0; i < kChunk; ++i) {
    if ((keep >> i) & 1u) {
      v[j] = static_cast<uint16_t>((i & 1) ? bf[i >> 1] >> 16 : bf[i >> 1] & 0xffffu);
      ix[j] = static_cast<uint8_t>(i & (kM - 1));
      ++j;
    }
  }
}

// 8 in-group indices (one per byte, each < 16) packed 4 bits each, low nibble first.
__device__ __forceinline__ uint32_t pack_nibbles(uint2 b) {
  uint32_t lo = b.x & 0x0f0f0f0fu, hi = b.y & 0x0f0f0f0fu;
  lo = (lo | (lo >> 4)) & 0x00ff00ffu;
  hi = (hi | (hi >> 4)) & 0x00ff00ffu;
  lo = (lo | (lo >> 8)) & 0xffffu;
  hi = (hi | (hi >> 8)) & 0xffffu;
  return lo | (hi << 16);
}

// Writes the staged runs of `nlines` lines: line l's `cnt` entries go to entries
// ((line0 + l) * groups + g0) * n ... of the form. When every run starts at a multiple of 8 entries
// and cnt is one too, values go as 16-byte stores and indices as whole 32-bit words; otherwise entry
// by entry, with index words shared with a neighbouring run merged by atomicOr (the array was zeroed
// before the pass).
__device__ void write_runs(const FormArgs& f, int64_t line0, int nlines, int64_t g0, int cnt, int n,
                           const uint16_t (*sv)[kStage], const uint8_t (*si)[kStage], int tid, int warp, int lane) {
  if (nlines <= 0 || cnt <= 0) return;
  uint32_t* words = reinterpret_cast<uint32_t*>(f.index);
  if ((f.groups * n) % 8 == 0 && (g0 * n) % 8 == 0 && cnt % 8 == 0) {
    const int per = cnt / 8;
    for (int it = tid; it < nlines * per; it += kThreads) {
      const int l = it / per, u = it % per;
      const int64_t e = ((line0 + l) * f.groups + g0) * n + 8 * u;
      *reinterpret_cast<uint4*>(f.values + e) = *reinterpret_cast<const uint4*>(&sv[l][8 * u]);
      words[e / 8] = pack_nibbles(*reinterpret_cast<const uint2*>(&si[l][8 * u]));
    }
    return;
  }
  for (int it = tid; it < nlines * cnt; it += kThreads) {
    const int l = it / cnt, j = it % cnt;
    f.values[((line0 + l) * f.groups + g0) * n + j] = sv[l][j];
  }
  for (int l = warp; l < nlines; l += kThreads / 32) {
    const int64_t e0 = ((line0 + l) * f.groups + g0) * n;
    const int64_t w0 = e0 / 8, w1 = (e0 + cnt - 1) / 8;
    for (int64_t wi = w0 + lane; wi <= w1; wi += 32) {
      uint32_t bits = 0;
      bool whole = true;
      for (int q = 0; q < 8; ++q) {
        const int64_t e = wi * 8 + q;
        if (e < e0 || e >= e0 + cnt) {
          whole = false;
          continue;
        }
        bits |= static_cast<uint32_t>(si[l][e - e0] & 15u) << (4 * q);
      }
      if (whole) words[wi] = bits;
      else atomicOr(&words[wi], bits);
    }
  }
}

// The 32-bit mma.sp metadata words of one staged 64 x 64 tile of a form (slots: sp24_meta_slot).
// Layout 0 (the default, the one the hardware reads): word 2q + h holds the codes of groups
// 4h .. 4h+3 of lines q and q + 8, i.e. two runs of 4 consecutive code bytes packed to nibbles.
__device__ __forceinline__ void write_meta(const FormArgs& f, int layout, int64_t line0, int64_t pos0,
                                           const uint8_t (*codes)[16], int i) {
  const int t = i & 15, kbt = (i >> 4) & 1, lbt = i >> 5;
  uint32_t word = 0;
  if (layout == 0) {
    const int q = t >> 1, h = t & 1;
    auto nibbles = [](uint32_t x) {   // 4 bytes (each < 16) -> 16 bits, byte j at bits 4j
      x = (x | (x >> 4)) & 0x00ff00ffu;
      return (x | (x >> 8)) & 0xffffu;
    };
    word = nibbles(*reinterpret_cast<const uint32_t*>(&codes[lbt * 16 + q][kbt * 8 + h * 4])) |
           (nibbles(*reinterpret_cast<const uint32_t*>(&codes[lbt * 16 + q + 8][kbt * 8 + h * 4])) << 16);
  } else {
#pragma unroll
    for (int slot = 0; slot < 8; ++slot) {
      const MetaSlot ms = sp24_meta_slot(layout, t, slot);
      word |= static_cast<uint32_t>(codes[lbt * 16 + ms.line][kbt * 8 + ms.group]) << ms.bit;
    }
  }
  f.meta24[((line0 / 16 + lbt) * (f.len_pad / 32) + pos0 / 32 + kbt) * 16 + t] = word;
}

// Step 1 of update_pregen: the tile's W, v, g and old mask bytes are read once, the update applied
// in registers, W and v written back, and the updated W staged (the layout of step 1 below).
__device__ __forceinline__ void stage_updated(const PregenArgs& a, Smem& s, int64_t r0, int64_t c0, int rows,
                                              int cols, int tid) {
  float* const w = a.w_out;
  const bool vec = a.k % 4 == 0;   // then cols % 4 == 0: whole float4s or none
  const SgdHyper h = a.u.h_dev ? *a.u.h_dev : a.u.h;
  bool bad = false;
  // The thread's 4 float4 positions, every load in flight before any arithmetic. (Two rounds of
  // two, 48 registers and 5 blocks per multiprocessor instead of 4, measured 4% slower on the H200.)
  constexpr int kPer = 4;
  {
    float4 wv[kPer], vv[kPer], gv[kPer];
    uint32_t mv[kPer];
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      const int idx = q * kThreads + tid, r = idx >> 4, c = (idx & 15) * 4;
      wv[q] = vv[q] = gv[q] = make_float4(0.f, 0.f, 0.f, 0.f);
      mv[q] = 0x01010101u;   // kept: no SR-STE term
      if (vec && r < rows && c < cols) {
        const int64_t at = (r0 + r) * a.k + c0 + c;
        wv[q] = *reinterpret_cast<const float4*>(w + at);
        vv[q] = *reinterpret_cast<const float4*>(a.u.v + at);
        gv[q] = __ldg(reinterpret_cast<const float4*>(a.u.g + at));
        if (a.u.mask) mv[q] = *reinterpret_cast<const uint32_t*>(a.u.mask + at);
      }
    }
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      const int idx = q * kThreads + tid, r = idx >> 4, c = (idx & 15) * 4;
      float out[4] = {0.f, 0.f, 0.f, 0.f};
      if (r < rows && c < cols) {
        const int64_t at = (r0 + r) * a.k + c0 + c;
        if (vec) {
          const float wi[4] = {wv[q].x, wv[q].y, wv[q].z, wv[q].w};
          float vi[4] = {vv[q].x, vv[q].y, vv[q].z, vv[q].w};
          const float gi[4] = {gv[q].x, gv[q].y, gv[q].z, gv[q].w};
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            out[j] = sgd_rule(wi[j], gi[j], vi[j], ((mv[q] >> (8 * j)) & 0xffu) == 0, h);
            bad |= !sgd_finite(out[j]);
          }
          *reinterpret_cast<float4*>(w + at) = make_float4(out[0], out[1], out[2], out[3]);
          *reinterpret_cast<float4*>(a.u.v + at) = make_float4(vi[0], vi[1], vi[2], vi[3]);
        } else {
          for (int j = 0; j < 4 && c + j < cols; ++j) {
            float vi = a.u.v[at + j];
            out[j] = sgd_rule(w[at + j], a.u.g[at + j], vi, a.u.mask && !a.u.mask[at + j], h);
            bad |= !sgd_finite(out[j]);
            a.u.v[at + j] = vi;
            w[at + j] = out[j];
          }
        }
      }
      *reinterpret_cast<float4*>(&s.tile[tile_at(r, c)]) = make_float4(out[0], out[1], out[2], out[3]);
    }
  }
  if (__any_sync(0xffffffffu, bad) && (tid & 31) == 0) atomicExch(a.u.nonfinite, 1);
}

template <int kM, bool kUpdate>
__global__ void __launch_bounds__(kThreads) pregen_kernel(PregenArgs a) {
  __shared__ __align__(16) Smem s;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kT, c0 = static_cast<int64_t>(blockIdx.x) * kT;
  const int n = a.n;
  const int rows = static_cast<int>(a.cout - r0 < kT ? a.cout - r0 : kT);
  const int cols = static_cast<int>(a.k - c0 < kT ? a.k - c0 : kT);

  // 1. Stage the tile: each warp reads two rows (2 x 256 contiguous bytes) per step, 4 loads in
  //    flight per thread; zeros outside the weight.
  if (kUpdate) {
    stage_updated(a, s, r0, c0, rows, cols, tid);
  } else {
    const bool vec = a.k % 4 == 0;
    float4 ld[4];
#pragma unroll
    for (int it = 0; it < 4; ++it) {
      const int idx = it * kThreads + tid, r = idx >> 4, c = (idx & 15) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (r < rows && c < cols) {
        const float* src = a.w + (r0 + r) * a.k + c0 + c;
        if (vec) {
          v = __ldg(reinterpret_cast<const float4*>(src));
        } else {
          v.x = src[0];
          if (c + 1 < cols) v.y = src[1];
          if (c + 2 < cols) v.z = src[2];
          if (c + 3 < cols) v.w = src[3];
        }
      }
      ld[it] = v;
    }
#pragma unroll
    for (int it = 0; it < 4; ++it) {
      const int idx = it * kThreads + tid, r = idx >> 4, c = (idx & 15) * 4;
      *reinterpret_cast<float4*>(&s.tile[tile_at(r, c)]) = ld[it];
    }
  }
  __syncthreads();

  // 2a. K axis: thread = (row lt, chunk q of 16 columns); a warp covers 16 rows x 2 chunks.
  if (a.need_k || a.dense) {
    const int lt = (warp >> 1) * 16 + (lane & 15), q = (warp & 1) * 2 + (lane >> 4);
    float v[kChunk];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float4 t = *reinterpret_cast<const float4*>(&s.tile[tile_at(lt, kChunk * q + 4 * j)]);
      v[4 * j] = t.x;
      v[4 * j + 1] = t.y;
      v[4 * j + 2] = t.z;
      v[4 * j + 3] = t.w;
    }
    uint32_t bf[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) bf[j] = bf16_pair(v[2 * j], v[2 * j + 1]);
    uint32_t keep = 0;
    if (a.need_k) keep = lt < rows ? select_chunk<kM>(v, n) & valid_groups<kM>(kChunk * q, cols) : 0u;
    const int nvalid = lt < rows ? min(kChunk, cols - kChunk * q) : 0;
    if (nvalid > 0) {
      const int64_t at = (r0 + lt) * a.k + c0 + kChunk * q;
      if (a.mask_f) {
        if (nvalid == kChunk && a.k % 16 == 0) {
          uint32_t m[4];
#pragma unroll
          for (int w = 0; w < 4; ++w) m[w] = (((keep >> (4 * w)) & 15u) * 0x00204081u) & 0x01010101u;   // bit b -> byte b
          *reinterpret_cast<uint4*>(a.mask_f + at) = make_uint4(m[0], m[1], m[2], m[3]);
        } else {
          for (int j = 0; j < nvalid; ++j) a.mask_f[at + j] = static_cast<uint8_t>((keep >> j) & 1u);
        }
      }
      if (a.dense) {
        uint32_t d[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const uint32_t m = a.dense_pruned ? (((keep >> (2 * j)) & 1u) ? 0xffffu : 0u) |
                                                  (((keep >> (2 * j + 1)) & 1u) ? 0xffff0000u : 0u)
                                            : 0xffffffffu;
          d[j] = bf[j] & m;
        }
        if (nvalid == kChunk && a.k % 8 == 0) {
          uint4* dst = reinterpret_cast<uint4*>(a.dense + at);
          dst[0] = make_uint4(d[0], d[1], d[2], d[3]);
          dst[1] = make_uint4(d[4], d[5], d[6], d[7]);
        } else {
          for (int j = 0; j < nvalid; ++j) {
            a.dense[at + j] = static_cast<uint16_t>((j & 1) ? d[j >> 1] >> 16 : d[j >> 1] & 0xffffu);
          }
        }
      }
    }
    chunk_forms<kM>(a.fwd, a.want_fwd, keep, bf, r0 + lt, c0 + kChunk * q, lt, q, n, s.codes[0], s.sv[0], s.si[0]);
  }

  // 2b. Cout axis: thread = (column lc, chunk q of 16 rows); a warp covers 8 columns x 4 chunks.
  if (a.want_bwd) {
    const int lc = warp * 8 + (lane & 7), q = lane >> 3;
    float v[kChunk];
#pragma unroll
    for (int i = 0; i < kChunk; ++i) v[i] = s.tile[tile_at(kChunk * q + i, lc)];
    uint32_t bf[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) bf[j] = bf16_pair(v[2 * j], v[2 * j + 1]);
    const uint32_t keep = lc < cols ? select_chunk<kM>(v, n) & valid_groups<kM>(kChunk * q, rows) : 0u;
    chunk_forms<kM>(a.bwd, true, keep, bf, c0 + lc, r0 + kChunk * q, lc, q, n, s.codes[1], s.sv[1], s.si[1]);
  }
  __syncthreads();

  // 3. The compressed runs (contiguous per line) and the 2:4 metadata words.
  if (a.want_fwd) write_runs(a.fwd, r0, rows, c0 / kM, cols / kM * n, n, s.sv[0], s.si[0], tid, warp, lane);
  if (a.want_bwd) write_runs(a.bwd, c0, cols, r0 / kM, rows / kM * n, n, s.sv[1], s.si[1], tid, warp, lane);
  if (tid < 128) {
    if (a.want_fwd && a.fwd.v24) write_meta(a.fwd, a.meta_layout, r0, c0, s.codes[0], tid);
  } else {
    if (a.want_bwd && a.bwd.v24) write_meta(a.bwd, a.meta_layout, c0, r0, s.codes[1], tid - 128);
  }
}

// Dense only (no selection): W -> BF16.
__global__ void dense_copy_kernel(const float* w, uint16_t* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = sat::f32_to_bf16_bits(w[i]);
}

FormArgs form_args(const DevNM* d) {
  FormArgs f;
  if (!d) return f;
  f.values = d->values;
  f.index = d->index;
  f.groups = d->groups;
  if (d->sp24) {
    f.v24 = d->v24;
    f.meta24 = d->meta24;
    f.len_pad = d->len_pad;
  }
  return f;
}

}  // namespace

int sp24_meta_layout() {
  static const int layout = [] {
    const char* e = std::getenv("SAT_SP24_META");
    return e && std::string(e) == "1" ? 1 : 0;
  }();
  return layout;
}

DevNM alloc_devnm(int64_t cout, int64_t k, NM nm, Axis axis, bool with_sp24) {
  validate_nm(nm);
  if (nm.dense()) throw Error("alloc_devnm: a dense setting has no compressed form");
  DevNM d;
  d.nm = nm;
  d.axis = axis;
  d.lines = axis == Axis::K ? cout : k;
  d.len = axis == Axis::K ? k : cout;
  if (d.len % nm.m != 0) {
    throw Error("alloc_devnm: " + nm.str() + " along " + axis_name(axis) + " needs a length divisible by " +
                std::to_string(nm.m) + ", got " + std::to_string(d.len));
  }
  d.groups = d.len / nm.m;
  const int64_t nnz = d.nnz();
  SAT_CUDA_CHECK(cudaMalloc(&d.values, std::max<int64_t>(nnz, 1) * 2));
  SAT_CUDA_CHECK(cudaMalloc(&d.index, round_up(std::max<int64_t>((nnz + 1) / 2, 1), 4)));
  d.sp24 = with_sp24 && sp24_eligible(nm);
  if (d.sp24) {
    d.lines_pad = round_up(d.lines, kTileLines);
    d.len_pad = round_up(d.len, kTileK);
    SAT_CUDA_CHECK(cudaMalloc(&d.v24, d.lines_pad * d.len_pad));   // len_pad/2 values of 2 bytes
    SAT_CUDA_CHECK(cudaMalloc(&d.meta24, d.lines_pad / 16 * (d.len_pad / 32) * 16 * 4));
    // The padding lines and positions no tile of pregen covers keep these for good: zero values and
    // a valid code (positions 0 and 1) in every group.
    SAT_CUDA_CHECK(cudaMemset(d.v24, 0, d.lines_pad * d.len_pad));
    SAT_CUDA_CHECK(cudaMemset(d.meta24, 0x44, d.lines_pad / 16 * (d.len_pad / 32) * 64));
  }
  return d;
}

void free_devnm(DevNM& d) {
  cudaFree(d.values);
  cudaFree(d.index);
  cudaFree(d.v24);
  cudaFree(d.meta24);
  d = DevNM{};
}

namespace {

// The launch behind pregen and update_pregen (w_out: update_pregen's W, else null).
void launch_pregen(const float* w, float* w_out, const SgdArgs& u, int64_t cout, int64_t k, NM nm,
                   const PregenOut& out, cudaStream_t stream, const char* who) {
  if (cout < 1 || k < 1) {
    throw Error(std::string(who) + ": empty weight [" + std::to_string(cout) + "][" + std::to_string(k) + "]");
  }
  auto check = [&](const DevNM* d, Axis axis) {
    if (!d) return;
    const int64_t lines = axis == Axis::K ? cout : k, len = axis == Axis::K ? k : cout;
    if (d->axis != axis || d->nm != nm || d->lines != lines || d->len != len) {
      throw Error(std::string(who) + ": the " + axis_name(axis) + " form was allocated for another shape or setting");
    }
  };
  check(out.fwd, Axis::K);
  check(out.bwd, Axis::Cout);
  PregenArgs a{};
  a.w = w;
  a.w_out = w_out;
  a.u = u;
  a.cout = cout;
  a.k = k;
  a.n = nm.n;
  a.fwd = form_args(out.fwd);
  a.bwd = form_args(out.bwd);
  a.want_fwd = out.fwd != nullptr;
  a.want_bwd = out.bwd != nullptr;
  a.need_k = a.want_fwd || out.mask_f || (out.dense && out.dense_pruned);
  if (a.need_k && k % nm.m != 0) {
    throw Error(std::string(who) + ": " + nm.str() + " along K needs K divisible by M, got K = " + std::to_string(k));
  }
  a.mask_f = out.mask_f;
  a.dense = out.dense;
  a.dense_pruned = out.dense_pruned;
  a.meta_layout = sp24_meta_layout();
  // The index words are zeroed first only where a word can hold entries of two tiles' runs (merged
  // by atomicOr); where every run covers whole words (lines and tile runs a multiple of 8 entries)
  // each word is stored exactly once.
  for (const DevNM* d : {out.fwd, out.bwd}) {
    if (!d) continue;
    const bool whole_words = (d->groups * nm.n) % 8 == 0 && (kT / nm.m * nm.n) % 8 == 0;
    if (!whole_words) {
      SAT_CUDA_CHECK(cudaMemsetAsync(d->index, 0, round_up(std::max<int64_t>((d->nnz() + 1) / 2, 1), 4), stream));
    }
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(k, kT)), static_cast<unsigned>(ceil_div(cout, kT)));
  auto kernel = [&](auto m_const) {
    constexpr int kM = decltype(m_const)::value;
    return w_out ? pregen_kernel<kM, true> : pregen_kernel<kM, false>;
  };
  void (*fn)(PregenArgs) = nullptr;
  switch (nm.m) {
    case 2: fn = kernel(std::integral_constant<int, 2>{}); break;
    case 4: fn = kernel(std::integral_constant<int, 4>{}); break;
    case 8: fn = kernel(std::integral_constant<int, 8>{}); break;
    case 16: fn = kernel(std::integral_constant<int, 16>{}); break;
    default: throw Error(std::string(who) + ": unsupported M = " + std::to_string(nm.m));
  }
  fn<<<grid, kThreads, 0, stream>>>(a);
  SAT_CUDA_LAUNCHED("pregen_kernel");
}

}  // namespace

void pregen(const float* w, int64_t cout, int64_t k, NM nm, const PregenOut& out, cudaStream_t stream) {
  if (cout < 1 || k < 1) throw Error("pregen: empty weight [" + std::to_string(cout) + "][" + std::to_string(k) + "]");
  if (nm.dense()) {
    if (out.fwd || out.bwd || out.mask_f) throw Error("pregen: a dense setting has no N:M forms or mask");
    if (out.dense) {
      const int64_t n = cout * k;
      dense_copy_kernel<<<static_cast<unsigned>(ceil_div(n, 256)), 256, 0, stream>>>(w, out.dense, n);
      SAT_CUDA_LAUNCHED("dense_copy_kernel");
    }
    return;
  }
  launch_pregen(w, nullptr, SgdArgs{}, cout, k, nm, out, stream, "pregen");
}

void update_pregen(float* w, const SgdArgs& u, int64_t cout, int64_t k, NM nm, const PregenOut& out,
                   cudaStream_t stream) {
  if (!u.v || !u.g || !u.nonfinite) throw Error("update_pregen: the momentum, gradient and non-finite flag are required");
  if (nm.dense()) {   // nothing to select: the plain update, then the BF16 copy
    sgd_update(w, u.v, u.g, u.mask, cout * k, u.h, u.nonfinite, stream, u.h_dev);
    pregen(w, cout, k, nm, out, stream);
    return;
  }
  launch_pregen(w, w, u, cout, k, nm, out, stream, "update_pregen");
}

}  // namespace sat::cuda
