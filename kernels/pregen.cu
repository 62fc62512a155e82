// N:M pre-generation on the GPU: one pass over the FP32 master weights W[cout][k] that produces the
// forward form (groups along K), the backward form (groups along Cout), their re-packed 2:4 forms
// for the sparse tensor cores, the forward keep-mask and a dense BF16 copy. Each block stages a
// 64 x 64 tile of W in shared memory once and selects along both axes from there. The selection
// rule is the N:M core's (sat/nm_select.hpp), compiled here for the device; nothing in this file
// decides which weights are kept.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "common.cuh"
#include "ops.hpp"
#include "sat/nm_select.hpp"

namespace sat::cuda {

namespace {

constexpr int kT = 64;           // tile edge (rows of W = Cout, columns = K); a multiple of every M
constexpr int kThreads = 256;

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
  int n;
  FormArgs fwd, bwd;
  bool want_fwd, want_bwd, need_k;   // need_k: selection along K (fwd, mask or pruned dense)
  uint8_t* mask_f;
  uint16_t* dense;
  bool dense_pruned;
  int meta_layout;
};

// Writes `cnt` staged entries of one line's run starting at entry e0: values contiguous, indices
// packed 4 bits each (low nibble first). Words of the packed array shared with a neighbouring run
// are merged with atomicOr (the array is zeroed before the pass); whole words are stored.
__device__ void write_run(const FormArgs& f, int64_t e0, int cnt, const uint16_t* sv,
                          const uint8_t* si, int lane, int nlanes) {
  for (int j = lane; j < cnt; j += nlanes) f.values[e0 + j] = sv[j];
  const int64_t w0 = e0 / 8, w1 = (e0 + cnt - 1) / 8;
  uint32_t* words = reinterpret_cast<uint32_t*>(f.index);
  for (int64_t wi = w0 + lane; wi <= w1; wi += nlanes) {
    uint32_t bits = 0;
    bool whole = true;
    for (int q = 0; q < 8; ++q) {
      const int64_t e = wi * 8 + q;
      if (e < e0 || e >= e0 + cnt) {
        whole = false;
        continue;
      }
      bits |= static_cast<uint32_t>(si[e - e0] & 15u) << (4 * q);
    }
    if (whole) words[wi] = bits;
    else atomicOr(&words[wi], bits);
  }
}

// The 2:4 re-pack of one staged 64 x 64 tile, in the form's orientation (kept(line, pos) and
// val(line, pos) address the tile; line0/pos0 are the tile's first line and position in the form).
// Phase 1: one thread per (line, group of 4) writes the group's two values as one 32-bit store
// (coalesced along the line) and leaves its 4-bit code in `codes`. Phase 2: one thread per metadata
// word gathers 8 codes (slots: sp24_meta_slot).
template <typename Kept, typename Val>
__device__ void write_sp24_tile(const FormArgs& f, int layout, int64_t line0, int64_t pos0, uint8_t (*codes)[16],
                                int tid, int nthreads, Kept kept, Val val) {
  for (int i = tid; i < 64 * 16; i += nthreads) {
    const int lt = i >> 4, gq = i & 15, pt = gq * 4;
    int idx[2] = {0, 1};
    uint32_t v[2] = {0, 0};
    int c = 0;
    for (int q = 0; q < 4 && c < 2; ++q) {
      if (kept(lt, pt + q)) {
        idx[c] = q;
        v[c] = f32_to_bf16_bits_dev(val(lt, pt + q));
        ++c;
      }
    }
    if (c == 1) {                              // pad with a zero at another position, ascending
      if (idx[0] == 3) {
        idx[1] = 3;
        v[1] = v[0];
        idx[0] = 2;
        v[0] = 0;
      } else {
        idx[1] = 3;
        v[1] = 0;
      }
    }
    codes[lt][gq] = static_cast<uint8_t>(idx[0] | (idx[1] << 2));
    const int64_t at = (line0 + lt) * (f.len_pad / 2) + (pos0 + pt) / 2;   // even
    reinterpret_cast<uint32_t*>(f.v24)[at / 2] = v[0] | (v[1] << 16);
  }
  __syncthreads();
  for (int i = tid; i < 4 * 2 * 16; i += nthreads) {
    const int t = i % 16, lbt = i / 32, kbt = (i / 16) % 2;
    uint32_t word = 0;
    for (int slot = 0; slot < 8; ++slot) {
      const MetaSlot ms = sp24_meta_slot(layout, t, slot);
      word |= static_cast<uint32_t>(codes[lbt * 16 + ms.line][kbt * 8 + ms.group]) << ms.bit;
    }
    const int64_t lb = line0 / 16 + lbt, kb = pos0 / 32 + kbt;
    f.meta24[(lb * (f.len_pad / 32) + kb) * 16 + t] = word;
  }
}

template <int kM>
__global__ void __launch_bounds__(kThreads) pregen_kernel(PregenArgs a) {
  __shared__ float tile[kT][kT + 1];
  __shared__ uint8_t keep_k[kT][kT];   // [row][col] kept in the forward form
  __shared__ uint8_t keep_c[kT][kT];   // [row][col] kept in the backward form
  __shared__ uint16_t stage_v[kT][kT];
  __shared__ uint8_t stage_i[kT][kT];
  __shared__ uint8_t codes[kT][16];

  const int tid = threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kT, c0 = static_cast<int64_t>(blockIdx.x) * kT;
  const int n = a.n;
  const int rows = static_cast<int>(a.cout - r0 < kT ? a.cout - r0 : kT);
  const int cols = static_cast<int>(a.k - c0 < kT ? a.k - c0 : kT);

  for (int i = tid; i < kT * kT; i += kThreads) {
    const int r = i / kT, c = i % kT;
    tile[r][c] = (r < rows && c < cols) ? a.w[(r0 + r) * a.k + c0 + c] : 0.0f;
    keep_k[r][c] = 0;
    keep_c[r][c] = 0;
  }
  __syncthreads();

  constexpr int kGpt = kT / kM;   // groups per tile edge
  // Selection along K: group gg of row r is tile[r][gg*M .. gg*M+M).
  if (a.need_k) {
    for (int i = tid; i < kT * kGpt; i += kThreads) {
      const int r = i / kGpt, gg = i % kGpt;
      if (r >= rows || gg * kM >= cols) continue;
      uint32_t keep;
      nm_keep_masks<kM, 1>(&tile[r][gg * kM], 1, 0, kM, n, &keep);
      uint8_t idx[kMaxGroup];
      nm_indices_of(keep, n, idx);
      for (int j = 0; j < n; ++j) {
        keep_k[r][gg * kM + idx[j]] = 1;
        stage_v[r][gg * n + j] = f32_to_bf16_bits_dev(tile[r][gg * kM + idx[j]]);
        stage_i[r][gg * n + j] = idx[j];
      }
    }
  }
  // Selection along Cout: group gg of column c is tile[gg*M .. gg*M+M)[c].
  if (a.want_bwd) {
    for (int i = tid; i < kT * kGpt; i += kThreads) {
      const int c = i % kT, gg = i / kT;
      if (c >= cols || gg * kM >= rows) continue;
      uint32_t keep;
      nm_keep_masks<kM, 1>(&tile[gg * kM][c], kT + 1, 0, kM, n, &keep);
      for (int q = 0; q < kM; ++q) keep_c[gg * kM + q][c] = (keep >> q) & 1u;
    }
  }
  __syncthreads();

  const int warp = tid / 32, lane = tid % 32;
  const int valid_groups_k = (cols + kM - 1) / kM, valid_groups_c = (rows + kM - 1) / kM;
  if (a.want_fwd) {
    for (int r = warp; r < rows; r += kThreads / 32) {
      const int64_t e0 = ((r0 + r) * a.fwd.groups + c0 / kM) * n;
      write_run(a.fwd, e0, valid_groups_k * n, stage_v[r], stage_i[r], lane, 32);
    }
    if (a.fwd.v24) {
      write_sp24_tile(a.fwd, a.meta_layout, r0, c0, codes, tid, kThreads,
                      [&](int lt, int pt) { return keep_k[lt][pt] != 0; },
                      [&](int lt, int pt) { return tile[lt][pt]; });
    }
  }
  if (a.mask_f || a.dense) {
    for (int i = tid; i < kT * kT; i += kThreads) {
      const int r = i / kT, c = i % kT;
      if (r >= rows || c >= cols) continue;
      const int64_t at = (r0 + r) * a.k + c0 + c;
      if (a.mask_f) a.mask_f[at] = keep_k[r][c];
      if (a.dense) {
        a.dense[at] = (a.dense_pruned && !keep_k[r][c]) ? uint16_t{0} : f32_to_bf16_bits_dev(tile[r][c]);
      }
    }
  }
  if (a.want_bwd) {
    __syncthreads();   // the staging arrays are reused
    for (int i = tid; i < kT * kGpt; i += kThreads) {
      const int c = i % kT, gg = i / kT;
      if (c >= cols || gg * kM >= rows) continue;
      uint32_t keep = 0;
      for (int q = 0; q < kM; ++q) keep |= static_cast<uint32_t>(keep_c[gg * kM + q][c]) << q;
      uint8_t idx[kMaxGroup];
      nm_indices_of(keep, n, idx);
      for (int j = 0; j < n; ++j) {
        stage_v[c][gg * n + j] = f32_to_bf16_bits_dev(tile[gg * kM + idx[j]][c]);
        stage_i[c][gg * n + j] = idx[j];
      }
    }
    __syncthreads();
    for (int c = warp; c < cols; c += kThreads / 32) {
      const int64_t e0 = ((c0 + c) * a.bwd.groups + r0 / kM) * n;
      write_run(a.bwd, e0, valid_groups_c * n, stage_v[c], stage_i[c], lane, 32);
    }
    if (a.bwd.v24) {
      __syncthreads();   // codes reused
      write_sp24_tile(a.bwd, a.meta_layout, c0, r0, codes, tid, kThreads,
                      [&](int lt, int pt) { return keep_c[pt][lt] != 0; },
                      [&](int lt, int pt) { return tile[pt][lt]; });
    }
  }
}

// Dense only (no selection): W -> BF16.
__global__ void dense_copy_kernel(const float* w, uint16_t* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = f32_to_bf16_bits_dev(w[i]);
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
  auto check = [&](const DevNM* d, Axis axis) {
    if (!d) return;
    const int64_t lines = axis == Axis::K ? cout : k, len = axis == Axis::K ? k : cout;
    if (d->axis != axis || d->nm != nm || d->lines != lines || d->len != len) {
      throw Error(std::string("pregen: the ") + axis_name(axis) + " form was allocated for another shape or setting");
    }
  };
  check(out.fwd, Axis::K);
  check(out.bwd, Axis::Cout);
  PregenArgs a{};
  a.w = w;
  a.cout = cout;
  a.k = k;
  a.n = nm.n;
  a.fwd = form_args(out.fwd);
  a.bwd = form_args(out.bwd);
  a.want_fwd = out.fwd != nullptr;
  a.want_bwd = out.bwd != nullptr;
  a.need_k = a.want_fwd || out.mask_f || (out.dense && out.dense_pruned);
  if (a.need_k && k % nm.m != 0) {
    throw Error("pregen: " + nm.str() + " along K needs K divisible by M, got K = " + std::to_string(k));
  }
  a.mask_f = out.mask_f;
  a.dense = out.dense;
  a.dense_pruned = out.dense_pruned;
  a.meta_layout = sp24_meta_layout();
  for (const DevNM* d : {out.fwd, out.bwd}) {
    if (!d) continue;
    SAT_CUDA_CHECK(cudaMemsetAsync(d->index, 0, round_up(std::max<int64_t>((d->nnz() + 1) / 2, 1), 4), stream));
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(k, kT)), static_cast<unsigned>(ceil_div(cout, kT)));
  switch (nm.m) {
    case 2: pregen_kernel<2><<<grid, kThreads, 0, stream>>>(a); break;
    case 4: pregen_kernel<4><<<grid, kThreads, 0, stream>>>(a); break;
    case 8: pregen_kernel<8><<<grid, kThreads, 0, stream>>>(a); break;
    case 16: pregen_kernel<16><<<grid, kThreads, 0, stream>>>(a); break;
    default: throw Error("pregen: unsupported M = " + std::to_string(nm.m));
  }
  SAT_CUDA_LAUNCHED("pregen_kernel");
}

}  // namespace sat::cuda
