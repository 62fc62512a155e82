// sat::cpu::spmm_nm: the CPU backend's N:M sparse x dense product (FF and BP of pruned layers).
//
//   out[l][p] (+)= sum_{g, j} value(l, g, j) * in[g * M + index(l, g, j)][p]
//
// Design. Columns are cut into panels of panel_vecs vectors (64 columns on AVX-512, 32 on AVX2)
// and the input rows into K-chunks of whole groups. Each (panel, chunk) of the input is copied
// into a per-thread buffer whose rows are one panel apart, zero-padded past `cols`, of at most
// ~32 KiB so that it stays in L1; the copy makes the inner loop independent of ld_in (no
// cache-set conflicts when P is a power of two) and of the column tail. The micro-kernel of the
// SIMD path chosen at run time (cpu/simd.cpp) keeps a register block of lines x vectors of
// accumulators and walks the chunk's groups in order; the lines of a block read the same M rows
// per group, which stay L1-hot. The rows of the chunk packed next are prefetched from inside the
// micro-kernel, spread over the blocks of the current chunk, and the next block's output rows are
// prefetched for writing, so that large-P products overlap their DRAM traffic with the FMAs.
//
// Order of operations. Partial sums go back to `out` between K-chunks (an exact FP32 store and
// reload), so every output element is accumulated exactly as spmm_nm_reference does: start at 0
// (or at out when accumulating) and apply one fused multiply-add per entry, in order (g, j). The
// result depends neither on the tiling, the SIMD path nor the thread count: it is the
// reference's, bit for bit.
//
// Threads: OpenMP, static schedule over (column panel, line range) items; each item owns its
// outputs, so there is no reduction across threads.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

#include "cpu/simd.hpp"
#include "sat/cpu_kernels.hpp"

namespace sat::cpu {
namespace {

constexpr int64_t kChunkBytes = 32 * 1024;         // packed input chunk budget (L1 is 32-48 KiB)
constexpr int64_t kMinParallelMacs = 1 << 17;      // below this, run single-threaded

// Copies rows [0, nrows) of `src` (row stride ld), columns [0, width), into buf (row stride
// `panel`), zero-filling columns [width, padded).
void pack_chunk(const float* src, int64_t ld, int64_t nrows, int width, int padded, int panel,
                float* buf) {
  for (int64_t r = 0; r < nrows; ++r) {
    float* d = buf + r * panel;
    std::memcpy(d, src + r * ld, sizeof(float) * width);
    std::fill(d + width, d + padded, 0.0f);
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
      for (int64_t l = 0; l < lines; ++l) std::fill_n(out + l * ld_out, cols, 0.0f);
    return;
  }
  const simd::SpmmKernel kern = simd::spmm_kernel();
  const int kVec = kern.vec, kPanel = kern.vec * kern.panel_vecs, kLines = kern.lines;
  const int64_t kRowBytes = kPanel * static_cast<int64_t>(sizeof(float));

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
    // A panel whose width is not a whole number of vectors computes into this block-sized copy
    // of its output rows, so that the micro-kernels load and store whole vectors only.
    float* edge = new (std::align_val_t(64)) float[simd::kMaxLines * kPanel];
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t panel = it / splits, split = it % splits;
      const int64_t p0 = panel * kPanel;
      const int width = static_cast<int>(std::min<int64_t>(kPanel, cols - p0));
      const int vecs = (width + kVec - 1) / kVec;
      const bool ragged = width % kVec != 0;
      const simd::MicroFn fn = kern.pick(vecs, n);
      const int64_t b0 = split * blocks_per_split;
      const int64_t b1 = std::min(blocks, b0 + blocks_per_split);
      simd::Tile t;
      t.buf = buf;
      t.m = m;
      t.n = n;
      for (int64_t ch = 0; ch < nchunks; ++ch) {
        const int64_t g0 = ch * chunk_groups;
        t.ng = std::min(groups, g0 + chunk_groups) - g0;
        t.zero_init = ch == 0 && !accumulate;
        pack_chunk(in + g0 * m * ld_in + p0, ld_in, t.ng * m, width, vecs * kVec, kPanel, buf);
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
            t.out[r] = ragged ? edge + std::min(r, t.nr - 1) * kPanel : out + l * ld_out + p0;
          }
          if (b + 1 < b1) {  // the next block's output segments, for writing
            for (int64_t l = l0 + kLines; l < std::min(lines, l0 + 2 * kLines); ++l)
              for (int c = 0; c < width; c += 16)
                __builtin_prefetch(out + l * ld_out + p0 + c, 1, 3);
          }
          if (!ragged) {
            fn(t);
            continue;
          }
          for (int r = 0; r < t.nr; ++r) {
            float* e = edge + r * kPanel;
            if (!t.zero_init) std::memcpy(e, out + (l0 + r) * ld_out + p0, sizeof(float) * width);
            std::fill(e + (t.zero_init ? 0 : width), e + vecs * kVec, 0.0f);
          }
          fn(t);
          for (int r = 0; r < t.nr; ++r)
            std::memcpy(out + (l0 + r) * ld_out + p0, edge + r * kPanel, sizeof(float) * width);
        }
      }
    }
    ::operator delete[](edge, std::align_val_t(64));
    ::operator delete[](buf, std::align_val_t(64));
  }
}

const char* simd_path() { return simd::path_name(); }
const char* simd_paths_available() { return simd::available_paths(); }
bool force_simd_path(const std::string& name) { return simd::force_path(name.c_str()); }

}  // namespace sat::cpu
