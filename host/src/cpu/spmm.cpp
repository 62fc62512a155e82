// sat::cpu::spmm_nm: the CPU backend's N:M sparse x dense product (FF and BP of every pruned layer).
//
//   out[l][p] (+)= sum_{g, j} value(l, g, j) * in[g * M + index(l, g, j)][p]
//
// Design (see also docs): the columns are cut into panels of kPanel = 64 columns (4 vectors of 16
// floats) and the input rows into K-chunks of whole groups sized so that one packed chunk
// (rows x 64 floats, 256-byte rows, zero-padded past `cols`) stays in L1. The packing makes the
// inner loop independent of ld_in (no cache-set conflicts for power-of-two P) and of the column tail.
// A micro-kernel keeps a register block of kLines (6) lines x 4 vectors of accumulators and walks the
// chunk's groups in order; each kept weight is one broadcast and a 4-vector FMA of a packed input row
// (gather-free: the row address is chunk + (g * M + index) * 256 bytes). The lines of a block read
// the same M rows per group, so those rows are L1-hot. Partial sums go back to `out` between chunks
// (an exact FP32 store/reload), so every output element is accumulated as in spmm_nm_reference:
// start at 0 (or at out when accumulating) and fused multiply-add the entries in order (g, j).
// The result therefore does not depend on the tiling or on the thread count: it is bit-identical to
// the reference whenever the reference's `o += v * x` is contracted to an FMA the same way (GCC's
// default -ffp-contract=fast with an FMA target, or no FMA at all on the portable path).
// Threads: OpenMP, static schedule over (panel, line-range) items; each item owns its outputs.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

#include "cpu/gemm.hpp"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>
#define SAT_SPMM_AVX512 1
#endif

namespace sat::cpu {
namespace {

constexpr int kVec = 16;                        // floats per vector (one zmm)
constexpr int kPanelVecs = 4;                   // vectors per column panel
constexpr int kPanel = kVec * kPanelVecs;       // columns per panel = packed row stride (floats)
constexpr int kLines = 6;                       // lines per micro-kernel register block
constexpr int64_t kChunkBytes = 32 * 1024;      // packed input chunk budget (L1 is 32-48 KiB)
constexpr int64_t kMinParallelMacs = 1 << 16;   // below this, run single-threaded

struct Block {
  const float* vals[kLines];    // values of each line at the chunk's first group
  const uint8_t* idx[kLines];   // indices of each line at the chunk's first group
  float* out[kLines];           // output row segment of each line at the panel's first column
  int nr;                       // valid lines (the others repeat the last valid one, never stored)
};

// Copies rows [0, nrows) of `src` (row stride ld), columns [0, width), into buf (row stride kPanel),
// zero-filling columns [width, vecs * kVec).
void pack_chunk(const float* src, int64_t ld, int64_t nrows, int width, int vecs, float* buf) {
  for (int64_t r = 0; r < nrows; ++r) {
    const float* s = src + r * ld;
    float* d = buf + r * kPanel;
#ifdef SAT_SPMM_AVX512
    for (int c = 0; c < vecs; ++c) {
      const int k = std::clamp(width - c * kVec, 0, kVec);
      __m512 x = _mm512_setzero_ps();
      if (k == kVec) {
        x = _mm512_loadu_ps(s + c * kVec);
      } else if (k > 0) {
        x = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << k) - 1u), s + c * kVec);
      }
      _mm512_store_ps(d + c * kVec, x);
    }
#else
    std::memcpy(d, s, sizeof(float) * width);
    std::fill(d + width, d + vecs * kVec, 0.0f);
#endif
  }
}

#ifdef SAT_SPMM_AVX512
// One register block: kLines lines x C vectors over `ng` groups of the packed chunk `buf`.
// N > 0 is the compile-time entries per group; N == 0 reads it from n_rt.
template <int C, int N>
void micro(const float* buf, int64_t ng, int m, int n_rt, const Block& b, bool zero_init,
           int last_width) {
  constexpr int R = kLines;
  const __mmask16 last = static_cast<__mmask16>(last_width >= kVec ? 0xFFFFu : (1u << last_width) - 1u);
  const float* vp[R];
  const uint8_t* ip[R];
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    vp[r] = b.vals[r];
    ip[r] = b.idx[r];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      if (zero_init) {
        acc[r][c] = _mm512_setzero_ps();
      } else if (c == C - 1) {
        acc[r][c] = _mm512_maskz_loadu_ps(last, b.out[r] + c * kVec);
      } else {
        acc[r][c] = _mm512_loadu_ps(b.out[r] + c * kVec);
      }
    }
  }
  const int n = N > 0 ? N : n_rt;
  const int64_t gstride = static_cast<int64_t>(m) * kPanel;
  for (int64_t g = 0; g < ng; ++g) {
    const float* gb = buf + g * gstride;
    const int64_t e0 = g * n;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < n; ++j) {
        const __m512 v = _mm512_set1_ps(vp[r][e0 + j]);
        const float* row = gb + static_cast<int64_t>(ip[r][e0 + j]) * kPanel;
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c)
          acc[r][c] = _mm512_fmadd_ps(v, _mm512_load_ps(row + c * kVec), acc[r][c]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (r >= b.nr) break;
#pragma GCC unroll 4
    for (int c = 0; c < C - 1; ++c) _mm512_storeu_ps(b.out[r] + c * kVec, acc[r][c]);
    _mm512_mask_storeu_ps(b.out[r] + (C - 1) * kVec, last, acc[r][C - 1]);
  }
}
#else
// Portable micro-kernel: the same order of operations on plain arrays (auto-vectorised). The
// `a += v * x` form contracts to an FMA exactly when the reference's does (same flags).
template <int C, int N>
void micro(const float* buf, int64_t ng, int m, int n_rt, const Block& b, bool zero_init,
           int last_width) {
  constexpr int R = kLines;
  constexpr int W = C * kVec;
  const int width = (C - 1) * kVec + last_width;
  alignas(64) float acc[R][W];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < W; ++q) acc[r][q] = 0.0f;
    if (!zero_init)
      for (int q = 0; q < width; ++q) acc[r][q] = b.out[r][q];
  }
  const int n = N > 0 ? N : n_rt;
  const int64_t gstride = static_cast<int64_t>(m) * kPanel;
  for (int64_t g = 0; g < ng; ++g) {
    const float* gb = buf + g * gstride;
    const int64_t e0 = g * n;
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < n; ++j) {
        const float v = b.vals[r][e0 + j];
        const float* row = gb + static_cast<int64_t>(b.idx[r][e0 + j]) * kPanel;
        for (int q = 0; q < W; ++q) acc[r][q] += v * row[q];
      }
    }
  }
  for (int r = 0; r < b.nr; ++r)
    for (int q = 0; q < width; ++q) b.out[r][q] = acc[r][q];
}
#endif

using MicroFn = void (*)(const float*, int64_t, int, int, const Block&, bool, int);

template <int C>
MicroFn pick_n(int n) {
  switch (n) {
    case 1: return micro<C, 1>;
    case 2: return micro<C, 2>;
    case 3: return micro<C, 3>;
    case 4: return micro<C, 4>;
    default: return micro<C, 0>;
  }
}

MicroFn pick(int vecs, int n) {
  switch (vecs) {
    case 1: return pick_n<1>(n);
    case 2: return pick_n<2>(n);
    case 3: return pick_n<3>(n);
    default: return pick_n<4>(n);
  }
}

}  // namespace

void spmm_nm(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols, float* out,
             int64_t ld_out, bool accumulate) {
  const int64_t lines = w.lines();
  const int64_t groups = w.groups();
  const int n = w.nm.n, m = w.nm.m;
  if (lines <= 0 || cols <= 0) return;
  if (groups == 0 || n == 0) {
    if (!accumulate)
      for (int64_t l = 0; l < lines; ++l) std::fill(out + l * ld_out, out + l * ld_out + cols, 0.0f);
    return;
  }

  // K-chunks of whole groups: one packed chunk fits kChunkBytes, or the whole line if it nearly does.
  const int64_t group_bytes = static_cast<int64_t>(m) * kPanel * sizeof(float);
  int64_t chunk_groups = std::max<int64_t>(1, kChunkBytes / group_bytes);
  if (groups * group_bytes <= kChunkBytes + kChunkBytes / 4) chunk_groups = groups;
  const int64_t chunks = (groups + chunk_groups - 1) / chunk_groups;
  chunk_groups = (groups + chunks - 1) / chunks;  // balance the chunks

  // Work items: (column panel, line range). Enough items to keep every thread busy, but ranges of
  // at least 8 blocks so the packing (once per item and chunk) stays small next to the FMAs.
  const int64_t panels = (cols + kPanel - 1) / kPanel;
  const int64_t blocks = (lines + kLines - 1) / kLines;
  const double macs = static_cast<double>(lines) * static_cast<double>(groups) * n * cols;
  const int threads = macs < kMinParallelMacs ? 1 : std::max(1, omp_get_max_threads());
  int64_t splits = 1;
  if (panels < 4 * threads)
    splits = std::clamp<int64_t>((4 * threads + panels - 1) / panels, 1, std::max<int64_t>(1, blocks / 8));
  const int64_t blocks_per_split = (blocks + splits - 1) / splits;
  splits = (blocks + blocks_per_split - 1) / blocks_per_split;
  const int64_t items = panels * splits;
  const int64_t buf_floats = chunk_groups * m * kPanel;

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* buf = new (std::align_val_t(64)) float[buf_floats];
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t panel = it / splits, split = it % splits;
      const int64_t p0 = panel * kPanel;
      const int width = static_cast<int>(std::min<int64_t>(kPanel, cols - p0));
      const int vecs = (width + kVec - 1) / kVec;
      const int last_width = width - (vecs - 1) * kVec;
      const MicroFn fn = pick(vecs, n);
      const int64_t b0 = split * blocks_per_split;
      const int64_t b1 = std::min(blocks, b0 + blocks_per_split);
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t g0 = ch * chunk_groups;
        const int64_t ng = std::min(groups, g0 + chunk_groups) - g0;
        pack_chunk(in + g0 * m * ld_in + p0, ld_in, ng * m, width, vecs, buf);
        const bool zero_init = ch == 0 && !accumulate;
        for (int64_t bl = b0; bl < b1; ++bl) {
          Block b;
          const int64_t l0 = bl * kLines;
          b.nr = static_cast<int>(std::min<int64_t>(kLines, lines - l0));
          for (int r = 0; r < kLines; ++r) {
            const int64_t l = l0 + std::min(r, b.nr - 1);
            const int64_t e = (l * groups + g0) * n;
            b.vals[r] = w.values.data() + e;
            b.idx[r] = w.index.data() + e;
            b.out[r] = out + l * ld_out + p0;
          }
          fn(buf, ng, m, n, b, zero_init, last_width);
        }
      }
    }
    ::operator delete[](buf, std::align_val_t(64));
  }
}

}  // namespace sat::cpu
