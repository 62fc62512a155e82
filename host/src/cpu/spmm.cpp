// sat::cpu::spmm_nm: the CPU backend's N:M sparse x dense product (FF and BP of pruned layers).
//
//   out[l][p] (+)= sum_{g, j} value(l, g, j) * in[g * M + index(l, g, j)][p]
//
// Design. Columns are cut into panels of 64 (kPanelVecs = 4 vectors of 16 floats) and the input
// rows into K-chunks of whole groups. Each (panel, chunk) of the input is copied into a per-thread
// buffer with a 256-byte row stride, zero-padded past `cols`, of at most ~32 KiB so that it stays
// in L1; the copy makes the inner loop independent of ld_in (no cache-set conflicts when P is a
// power of two) and of the column tail. A micro-kernel keeps a register block of kLines = 6 lines
// x 4 vectors of accumulators and walks the chunk's groups in order: each kept weight is one
// broadcast of its value and 4 FMAs with the packed input row g * M + index (an axpy; gather-free,
// the row address is buffer + (g * M + index) * 256). Loads are what limit it (each FMA reads its
// input row from L1), so the in-group indices of 8 / N groups of a line come in one 64-bit load
// (N = 1, 2, 4) and the values are read straight from the compressed arrays; nothing is repacked
// per call. The 6 lines of a block read the same M rows per group, which stay L1-hot. The rows of
// the chunk packed next are prefetched from inside the micro-kernel, spread over the blocks of the
// current chunk, and the next block's output rows are prefetched for writing, so that large-P
// products overlap their DRAM traffic with the FMAs.
//
// Order of operations. Partial sums go back to `out` between K-chunks (an exact FP32 store and
// reload), so every output element is accumulated exactly as spmm_nm_reference does: start at 0
// (or at out when accumulating) and multiply-add the entries in order (g, j). The result depends
// neither on the tiling nor on the thread count, and it is bit-identical to the reference whenever
// both round the multiply-add alike: the AVX-512 path uses explicit FMAs, which the reference's
// `o += v * x` matches when the compiler contracts it (GCC -O2/-O3 with an FMA target, default
// -ffp-contract=fast; not at -O0/-O1); the portable path is written like the reference and so
// contracts exactly when it does.
//
// Threads: OpenMP, static schedule over (column panel, line range) items; each item owns its
// outputs, so there is no reduction across threads.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

#include "sat/cpu_kernels.hpp"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>
#define SAT_SPMM_AVX512 1
#endif

namespace sat::cpu {
namespace {

constexpr int kVec = 16;                           // floats per vector (one zmm)
constexpr int kPanelVecs = 4;                      // vectors per column panel (C)
constexpr int kPanel = kVec * kPanelVecs;          // columns per panel = packed row stride (floats)
constexpr int64_t kRowBytes = kPanel * sizeof(float);
constexpr int kLines = 6;                          // lines per micro-kernel register block (R)
constexpr int64_t kChunkBytes = 32 * 1024;         // packed input chunk budget (L1 is 32-48 KiB)
constexpr int64_t kMinParallelMacs = 1 << 17;      // below this, run single-threaded

// Copies rows [0, nrows) of `src` (row stride ld), columns [0, width), into buf (row stride
// kPanel), zero-filling columns [width, vecs * kVec).
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

// Arguments of one micro-kernel call: a block of kLines lines over `ng` groups of a packed chunk.
struct Tile {
  const float* buf;               // packed input chunk, row stride kRowBytes
  const float* vals[kLines];      // values of each line at the chunk's first group
  const uint8_t* idx[kLines];     // indices of each line at the chunk's first group
  float* out[kLines];             // output row segment of each line at the panel's first column
  int64_t ng;                     // groups in the chunk
  int m, n;                       // M and entries per group
  int nr;                         // valid lines (the others repeat the last one, never stored)
  bool zero_init;                 // start from 0 instead of from out
  int last_width;                 // valid columns of the last vector (1..16)
  const char* pf;                 // input rows to prefetch during this call: first row,
  int64_t pf_ld;                  // bytes between rows,
  int64_t pf_rows;                // number of rows,
  int pf_bytes;                   // bytes per row
};

// Prefetches one input row segment (toward L2) for a later pack_chunk.
inline void prefetch_row(const char* p, int bytes) {
  for (int b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 2);
  __builtin_prefetch(p + bytes - 1, 0, 2);
}

#ifdef SAT_SPMM_AVX512
inline __m512 row_vec(const char* row, int c) {
  return _mm512_load_ps(reinterpret_cast<const float*>(row) + c * kVec);
}

// kLines lines x C vectors. N in {1, 2, 4}: compile-time entries per group, and the indices of
// 8 / N groups of a line come in one 64-bit load; N == 0: any n, one index load per entry.
template <int C, int N>
void micro(const Tile& t) {
  constexpr int R = kLines;
  const __mmask16 last =
      static_cast<__mmask16>(t.last_width >= kVec ? 0xFFFFu : (1u << t.last_width) - 1u);
  __m512 acc[R][C];
  const float* vp[R];
  const uint8_t* ip[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    vp[r] = t.vals[r];
    ip[r] = t.idx[r];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      if (t.zero_init) {
        acc[r][c] = _mm512_setzero_ps();
      } else if (c == C - 1) {
        acc[r][c] = _mm512_maskz_loadu_ps(last, t.out[r] + c * kVec);
      } else {
        acc[r][c] = _mm512_loadu_ps(t.out[r] + c * kVec);
      }
    }
  }
  const char* gb = reinterpret_cast<const char*>(t.buf);
  const int64_t gstride = t.m * kRowBytes;
  const int n = N > 0 ? N : t.n;
  int64_t g = 0;
  const char* pf = t.pf;
  int64_t pf_left = t.pf_rows;
  if constexpr (N > 0) {
    constexpr int U = 8 / N;  // groups per 64-bit index word
    const int64_t iters = std::max<int64_t>(1, t.ng / U);
    const int64_t pf_per_iter = (pf_left + iters - 1) / iters;
    for (; g + U <= t.ng; g += U) {
      for (int64_t i = 0; i < pf_per_iter && pf_left > 0; ++i, --pf_left, pf += t.pf_ld)
        prefetch_row(pf, t.pf_bytes);
      uint64_t words[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) std::memcpy(&words[r], ip[r] + g * N, sizeof(uint64_t));
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) {
        const char* base = gb + u * gstride;
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
          for (int j = 0; j < N; ++j) {
            const uint32_t index = static_cast<uint32_t>(words[r] >> (8 * (u * N + j))) & 0xFFu;
            const char* row = base + index * kRowBytes;
            const __m512 v = _mm512_set1_ps(vp[r][(g + u) * N + j]);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c)
              acc[r][c] = _mm512_fmadd_ps(v, row_vec(row, c), acc[r][c]);
          }
        }
      }
      gb += U * gstride;
    }
  }
  for (; pf_left > 0; --pf_left, pf += t.pf_ld) prefetch_row(pf, t.pf_bytes);
  for (; g < t.ng; ++g) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < n; ++j) {
        const char* row = gb + static_cast<uint32_t>(ip[r][g * n + j]) * kRowBytes;
        const __m512 v = _mm512_set1_ps(vp[r][g * n + j]);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(v, row_vec(row, c), acc[r][c]);
      }
    }
    gb += gstride;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (r >= t.nr) break;
#pragma GCC unroll 8
    for (int c = 0; c < C - 1; ++c) _mm512_storeu_ps(t.out[r] + c * kVec, acc[r][c]);
    _mm512_mask_storeu_ps(t.out[r] + (C - 1) * kVec, last, acc[r][C - 1]);
  }
}
#else
// Portable micro-kernel: the same order of operations on plain arrays (auto-vectorised). The
// `a += v * x` form contracts to an FMA exactly when the reference's does (same flags).
template <int C, int N>
void micro(const Tile& t) {
  constexpr int R = kLines;
  constexpr int W = C * kVec;
  const int width = (C - 1) * kVec + t.last_width;
  alignas(64) float acc[R][W];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < W; ++q) acc[r][q] = 0.0f;
    if (!t.zero_init)
      for (int q = 0; q < width; ++q) acc[r][q] = t.out[r][q];
  }
  const int n = N > 0 ? N : t.n;
  for (int64_t g = 0; g < t.ng; ++g) {
    const float* gb = t.buf + g * t.m * kPanel;
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < n; ++j) {
        const float v = t.vals[r][g * n + j];
        const float* row = gb + t.idx[r][g * n + j] * kPanel;
        for (int q = 0; q < W; ++q) acc[r][q] += v * row[q];
      }
    }
  }
  for (int r = 0; r < t.nr; ++r)
    for (int q = 0; q < width; ++q) t.out[r][q] = acc[r][q];
}
#endif

using MicroFn = void (*)(const Tile&);

template <int C>
MicroFn pick_n(int n) {
  switch (n) {
    case 1: return micro<C, 1>;
    case 2: return micro<C, 2>;
    case 4: return micro<C, 4>;
    default: return micro<C, 0>;
  }
}

template <int C = 1>
MicroFn pick(int vecs, int n) {
  if constexpr (C < kPanelVecs) {
    if (vecs > C) return pick<C + 1>(vecs, n);
  }
  return pick_n<C>(n);
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
      for (int64_t l = 0; l < lines; ++l) std::fill_n(out + l * ld_out, cols, 0.0f);
    return;
  }

  // K-chunks of whole groups: a packed chunk fits kChunkBytes, or is the whole line if it nearly
  // does.
  const int64_t group_bytes = m * kRowBytes;
  int64_t chunk_groups = std::max<int64_t>(1, kChunkBytes / group_bytes);
  if (groups * group_bytes <= kChunkBytes + kChunkBytes / 4) chunk_groups = groups;
  const int64_t chunks = (groups + chunk_groups - 1) / chunk_groups;
  chunk_groups = (groups + chunks - 1) / chunks;  // balance the chunks
  const int64_t nchunks = (groups + chunk_groups - 1) / chunk_groups;

  // Work items: (column panel, line range). Enough items to keep every thread busy, but ranges of
  // at least 8 blocks so the packing (once per item and chunk) stays small next to the FMAs.
  const int64_t panels = (cols + kPanel - 1) / kPanel;
  const int64_t blocks = (lines + kLines - 1) / kLines;
  const double macs = static_cast<double>(lines) * static_cast<double>(groups) * n * cols;
  const int threads = macs < kMinParallelMacs ? 1 : std::max(1, omp_get_max_threads());
  int64_t splits = 1;
  if (panels < 4 * threads)
    splits = std::clamp<int64_t>((4 * threads + panels - 1) / panels, 1,
                                 std::max<int64_t>(1, blocks / 8));
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
      const MicroFn fn = pick(vecs, n);
      const int64_t b0 = split * blocks_per_split;
      const int64_t b1 = std::min(blocks, b0 + blocks_per_split);
      Tile t;
      t.buf = buf;
      t.m = m;
      t.n = n;
      t.last_width = width - (vecs - 1) * kVec;
      for (int64_t ch = 0; ch < nchunks; ++ch) {
        const int64_t g0 = ch * chunk_groups;
        t.ng = std::min(groups, g0 + chunk_groups) - g0;
        t.zero_init = ch == 0 && !accumulate;
        pack_chunk(in + g0 * m * ld_in + p0, ld_in, t.ng * m, width, vecs, buf);
        // The chunk packed next (next chunk of this panel, or first chunk of the next panel) is
        // prefetched a slice per block, so its rows arrive while this one computes.
        const float* next = nullptr;
        int64_t next_rows = 0;
        int next_width = 0;
        if (ch + 1 < nchunks) {
          next = in + (g0 + chunk_groups) * m * ld_in + p0;
          next_rows = (std::min(groups, g0 + 2 * chunk_groups) - g0 - chunk_groups) * m;
          next_width = width;
        } else if (p0 + kPanel < cols) {
          next = in + p0 + kPanel;
          next_rows = std::min(groups, chunk_groups) * m;
          next_width = static_cast<int>(std::min<int64_t>(kPanel, cols - p0 - kPanel));
        }
        const int64_t slice = (next_rows + (b1 - b0) - 1) / std::max<int64_t>(1, b1 - b0);
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t r0 = std::min((b - b0) * slice, next_rows);
          const int64_t r1 = std::min(r0 + slice, next_rows);
          t.pf = next ? reinterpret_cast<const char*>(next + r0 * ld_in) : nullptr;
          t.pf_ld = ld_in * static_cast<int64_t>(sizeof(float));
          t.pf_rows = r1 - r0;
          t.pf_bytes = next_width * static_cast<int>(sizeof(float));
          const int64_t l0 = b * kLines;
          t.nr = static_cast<int>(std::min<int64_t>(kLines, lines - l0));
          for (int r = 0; r < kLines; ++r) {
            const int64_t l = l0 + std::min(r, t.nr - 1);
            const int64_t e = (l * groups + g0) * n;
            t.vals[r] = w.values.data() + e;
            t.idx[r] = w.index.data() + e;
            t.out[r] = out + l * ld_out + p0;
          }
          if (b + 1 < b1) {  // the next block's output segments, for writing
            for (int64_t l = l0 + kLines; l < std::min(lines, l0 + 2 * kLines); ++l)
              for (int c = 0; c < width; c += kVec)
                __builtin_prefetch(out + l * ld_out + p0 + c, 1, 3);
          }
          fn(t);
        }
      }
    }
    ::operator delete[](buf, std::align_val_t(64));
  }
}

}  // namespace sat::cpu
