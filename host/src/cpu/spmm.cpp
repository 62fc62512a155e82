// sat::cpu::spmm_nm: the CPU backend's N:M sparse x dense product (FF and BP of pruned layers),
// and its implicit-GEMM forms for convolutions (spmm_nm_conv_ff, spmm_nm_conv_bp).
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
// The input is whatever can fill that buffer: a row-major matrix (spmm_nm), or a convolution's
// images read through their windows (spmm_nm_conv_ff: the packing is the only place im2col's
// gather happens, one L1-sized tile at a time, so the lowered matrix never exists). The driver,
// the micro-kernels and hence the arithmetic are the same for both.
//
// Order of operations. Partial sums go back to `out` between K-chunks (an exact FP32 store and
// reload), so every output element is accumulated exactly as spmm_nm_reference does: start at 0
// (or at out when accumulating) and apply one fused multiply-add per entry, in order (g, j). The
// result depends neither on the tiling, the SIMD path nor the thread count: it is the
// reference's, bit for bit. Packing only copies (the zeros of a window's padding are the zeros
// im2col writes), so the implicit forms give the lowered product's bits too.
//
// Threads: OpenMP, static schedule over (column panel, line range) items; each item owns its
// outputs, so there is no reduction across threads.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cpu/conv_lowering.hpp"
#include "cpu/simd.hpp"
#include "sat/error.hpp"
#include "sat/cpu_kernels.hpp"

namespace sat::cpu {
namespace {

constexpr int64_t kChunkBytes = 32 * 1024;         // packed input chunk budget (L1 is 32-48 KiB)
constexpr int64_t kMinParallelMacs = 1 << 17;      // below this, run single-threaded
// Floats a window row copy may write past its run (it copies whole 16-float blocks; the next
// run or row overwrites them), so the pack buffer has this much slack after its last row.
constexpr int kRunBlock = 16;
// conv_wu's reduction: one FP32 chain per weight over the positions of about this many outputs
// (whole images), then the chains' results summed in image order. One chain over a whole large
// batch would lose digits (a 1700-image test drifted past 1e-5 when oneDNN reduced it at once).
constexpr int64_t kConvWuPositions = 1024;

// Copies runs of consecutive floats, base + src[i] to d + dst[i] for len[i] floats, in whole
// kRunBlock-float blocks: runs are short (an output row, a kernel row), and a variable-length
// memcpy per run would cost more than the copy. A block past a run's end is overwritten by the next
// run, by the caller's zero fill, or by the next packed row, so runs go in ascending dst order and
// both the source and the buffer have kRunBlock floats of slack.
void copy_runs(float* d, const float* base, int runs, const int64_t* src, const int* dst, const int* len) {
  for (int i = 0; i < runs; ++i) {
    const float* sp = base + src[i];
    float* o = d + dst[i];
    for (int q = 0; q < len[i]; q += kRunBlock) std::memcpy(o + q, sp + q, sizeof(float) * kRunBlock);
  }
}

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

// The input of spmm_nm: rows of a row-major matrix, prefetched a chunk ahead.
struct MatrixSource {
  const float* in;
  int64_t ld;
  void pack(int64_t r0, int64_t nrows, int64_t p0, int width, int padded, int panel,
            float* buf) const {
    pack_chunk(in + r0 * ld + p0, ld, nrows, width, padded, panel, buf);
  }
  const float* row(int64_t r, int64_t p) const { return in + r * ld + p; }
};

// The input of spmm_nm_conv_ff: the im2col matrix of images zero-bordered by conv_pad_images,
// read through the windows. Row (c, ky, kx), column b*oh*ow + oy*ow + ox is
// xpad[b][c][oy*s + ky][ox*s + kx]; a row of a panel is a few runs of consecutive ox, one per
// output row (oy) the panel crosses, and those runs are the same for every row up to the row's
// offset (c, ky, kx) in the padded plane, so they are worked out once per pack. The images are
// small next to a lowered batch (k*k times smaller) and reread by every panel, so they stay in
// cache: no prefetch.
struct WindowSource {
  static constexpr int kMaxRuns = 256;   // a run is at least one column: at most a panel's width
  const float* xpad;
  ConvGeometry g;
  int64_t hp, wp;                        // padded plane
  int64_t ld = 0;                        // (no rows to prefetch)
  void pack(int64_t r0, int64_t nrows, int64_t p0, int width, int padded, int panel,
            float* buf) const {
    const int64_t ohw = g.oh * g.ow, plane = hp * wp;
    int64_t run_src[kMaxRuns];
    int run_dst[kMaxRuns], run_len[kMaxRuns], runs = 0;
    for (int64_t b = p0 / ohw, oy = (p0 % ohw) / g.ow, ox = p0 % g.ow, f = 0; f < width; ++runs) {
      run_len[runs] = static_cast<int>(std::min<int64_t>(g.ow - ox, width - f));
      run_dst[runs] = static_cast<int>(f);
      run_src[runs] = b * g.cin * plane + oy * g.s * wp + ox * g.s;
      f += run_len[runs];
      ox = 0;
      if (++oy == g.oh) {
        oy = 0;
        ++b;
      }
    }
    int64_t c = r0 / (g.k * g.k), ky = (r0 / g.k) % g.k, kx = r0 % g.k;
    for (int64_t r = 0; r < nrows; ++r) {
      float* d = buf + r * panel;
      const float* base = xpad + c * plane + ky * wp + kx;
      if (g.s == 1) {
        copy_runs(d, base, runs, run_src, run_dst, run_len);
      } else {
        for (int i = 0; i < runs; ++i) {
          const float* s = base + run_src[i];
          float* o = d + run_dst[i];
          for (int q = 0; q < run_len[i]; ++q) o[q] = s[q * g.s];
        }
      }
      std::fill(d + width, d + padded, 0.0f);
      if (++kx == g.k) {
        kx = 0;
        if (++ky == g.k) {
          ky = 0;
          ++c;
        }
      }
    }
  }
  const float* row(int64_t, int64_t) const { return nullptr; }
};

// The input of conv_wu: one image's windows as rows (im2row) over its zero-bordered planes held
// channels-last, xt[y][x][c] (conv_wu transposes each image once): row = output position
// oy*ow + ox, column (ky, kx, c) = xt[oy*s + ky][ox*s + kx][c]. In that column order a row is k
// runs of k*cin consecutive floats, one per kernel row, so a row packs in a few block copies
// where the channels-first order needed a load per float (the gather held WU's driver at 12% of a
// LeNet-5 step, waiting on loads). conv_wu permutes the columns back to (c, ky, kx).
struct PositionSource {
  static constexpr int kMaxRuns = 256;   // a run is at least one column: at most a panel's width
  const float* img;                      // xt, with kRunBlock readable floats after it
  ConvGeometry g;
  int64_t wp;                            // padded row
  int64_t ld = 0;                        // (no rows to prefetch)
  void pack(int64_t r0, int64_t nrows, int64_t k0, int width, int padded, int panel,
            float* buf) const {
    const int64_t seg = g.k * g.cin, ystride = wp * g.cin;
    int64_t run_src[kMaxRuns];
    int run_dst[kMaxRuns], run_len[kMaxRuns], runs = 0;
    for (int f = 0; f < width; ++runs) {
      const int64_t k = k0 + f;
      run_len[runs] = static_cast<int>(std::min<int64_t>(seg - k % seg, width - f));
      run_dst[runs] = f;
      run_src[runs] = (k / seg) * ystride + k % seg;
      f += run_len[runs];
    }
    int64_t oy = r0 / g.ow, ox = r0 % g.ow;
    for (int64_t r = 0; r < nrows; ++r) {
      float* d = buf + r * panel;
      const float* base = img + (oy * g.s * wp + ox * g.s) * g.cin;
      copy_runs(d, base, runs, run_src, run_dst, run_len);
      std::fill(d + width, d + padded, 0.0f);
      if (++ox == g.ow) {
        ox = 0;
        ++oy;
      }
    }
  }
  const float* row(int64_t, int64_t) const { return nullptr; }
};

// The weights the driver walks: lines of `groups` groups of N entries, each a value and an
// in-group index. NMWeights: a compressed N:M form. DenseLines: a dense row-major matrix read as
// groups of one (M = N = 1, every index 0), which is how the dense WU product of a convolution
// (cpu::conv_wu) runs on the same micro-kernels: one FMA per term, in the order of the groups.
struct NMWeights {
  const NMCompressed& w;
  int64_t lines() const { return w.lines(); }
  int64_t groups() const { return w.groups(); }
  int n() const { return w.nm.n; }
  int m() const { return w.nm.m; }
  const float* vals(int64_t l, int64_t g0) const { return w.values.data() + (l * w.groups() + g0) * w.nm.n; }
  const uint8_t* idx(int64_t l, int64_t g0) const { return w.index.data() + (l * w.groups() + g0) * w.nm.n; }
};

// Indices of DenseLines: zeros for the longest chunk any path packs (its groups are one input row
// each, so a chunk has at most kChunkBytes * 5/4 / (16 floats * 4 bytes) groups) plus the 8 bytes
// the micro-kernels read at a time.
alignas(64) constexpr uint8_t kZeroIndex[1024] = {};

struct DenseLines {
  const float* a;
  int64_t lda, nlines, ngroups;
  int64_t lines() const { return nlines; }
  int64_t groups() const { return ngroups; }
  int n() const { return 1; }
  int m() const { return 1; }
  const float* vals(int64_t l, int64_t g0) const { return a + l * lda + g0; }
  const uint8_t* idx(int64_t, int64_t) const { return kZeroIndex; }
};

// The driver over any weights and source. serial: run on the calling thread only (the caller is itself one
// of the threads of a parallel region).
template <class Weights, class Source>
void spmm_run(const Weights& w, const Source& src, int64_t cols, float* out, int64_t ld_out,
              bool accumulate, bool serial) {
  const int64_t lines = w.lines();
  const int64_t groups = w.groups();
  const int n = w.n(), m = w.m();
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
  const int threads = serial || macs < kMinParallelMacs ? 1 : std::max(1, omp_get_max_threads());
  int64_t splits = 1;
  if (panels < 4 * threads)
    splits = std::clamp<int64_t>((4 * threads + panels - 1) / panels, 1,
                                 std::max<int64_t>(1, blocks / 8));
  const int64_t blocks_per_split = (blocks + splits - 1) / splits;
  splits = (blocks + blocks_per_split - 1) / blocks_per_split;
  const int64_t items = panels * splits;
  const int64_t buf_floats = chunk_groups * m * kPanel + kRunBlock;

  const auto work = [&](int64_t it_begin, int64_t it_end) {
    float* buf = new (std::align_val_t(64)) float[buf_floats];
    // A panel whose width is not a whole number of vectors computes into this block-sized copy
    // of its output rows, so that the micro-kernels load and store whole vectors only.
    float* edge = new (std::align_val_t(64)) float[simd::kMaxLines * kPanel];
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t panel = it / splits, split = it % splits;
      const int64_t p0 = panel * kPanel;
      const int width = static_cast<int>(std::min<int64_t>(kPanel, cols - p0));
      const int vecs = (width + kVec - 1) / kVec;
      const bool ragged = width % kVec != 0;
      const simd::MicroFn fn = kern.pick(vecs, n, m);
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
        src.pack(g0 * m, t.ng * m, p0, width, vecs * kVec, kPanel, buf);
        // The chunk packed next (next chunk of this panel, or first chunk of the next panel) is
        // prefetched a slice per block, so its rows arrive while this one computes.
        const float* next = nullptr;
        int64_t next_rows = 0;
        int next_width = 0;
        if (ch + 1 < nchunks) {
          next = src.row((g0 + chunk_groups) * m, p0);
          next_rows = (std::min(groups, g0 + 2 * chunk_groups) - g0 - chunk_groups) * m;
          next_width = width;
        } else if (p0 + kPanel < cols) {
          next = src.row(0, p0 + kPanel);
          next_rows = std::min(groups, chunk_groups) * m;
          next_width = static_cast<int>(std::min<int64_t>(kPanel, cols - p0 - kPanel));
        }
        if (!next) next_rows = 0;
        const int64_t slice = (next_rows + (b1 - b0) - 1) / std::max<int64_t>(1, b1 - b0);
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t r0 = std::min((b - b0) * slice, next_rows);
          const int64_t r1 = std::min(r0 + slice, next_rows);
          t.pf = next ? reinterpret_cast<const char*>(next + r0 * src.ld) : nullptr;
          t.pf_ld = src.ld * static_cast<int64_t>(sizeof(float));
          t.pf_rows = r1 - r0;
          t.pf_bytes = next_width * static_cast<int>(sizeof(float));
          const int64_t l0 = b * kLines;
          t.nr = static_cast<int>(std::min<int64_t>(kLines, lines - l0));
          for (int r = 0; r < kLines; ++r) {
            const int64_t l = l0 + std::min(r, t.nr - 1);
            t.vals[r] = w.vals(l, g0);
            t.idx[r] = w.idx(l, g0);
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
  };
  if (threads == 1) {
    work(0, items);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    // The static schedule's split, made explicit so that each thread allocates its buffers once.
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t per = items / nt, extra = items % nt;
    const int64_t begin = id * per + std::min(id, extra);
    work(begin, begin + per + (id < extra ? 1 : 0));
  }
}

}  // namespace

void spmm_nm(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols, float* out,
             int64_t ld_out, bool accumulate) {
  spmm_run(NMWeights{w}, MatrixSource{in, ld_in}, cols, out, ld_out, accumulate, false);
}

void conv_pad_images(const ConvGeometry& g, const float* x, int64_t nb, std::vector<float>& xpad) {
  const int64_t hp = g.h + 2 * g.p, wp = g.w + 2 * g.p, planes = nb * g.cin;
  xpad.resize(static_cast<size_t>(planes * hp * wp + kRunBlock));
#pragma omp parallel for schedule(static) if (planes * hp * wp > (1 << 16))
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* d = xpad.data() + pl * hp * wp;
    const float* s = x + pl * g.h * g.w;
    std::fill_n(d, g.p * wp, 0.0f);
    for (int64_t iy = 0; iy < g.h; ++iy) {
      float* row = d + (iy + g.p) * wp;
      std::fill_n(row, g.p, 0.0f);
      std::copy_n(s + iy * g.w, g.w, row + g.p);
      std::fill_n(row + g.p + g.w, g.p, 0.0f);
    }
    std::fill_n(d + (g.h + g.p) * wp, g.p * wp, 0.0f);
  }
  std::fill_n(xpad.data() + planes * hp * wp, kRunBlock, 0.0f);
}

void spmm_nm_conv_ff(const NMCompressed& w, const ConvGeometry& g, const float* xpad, int64_t nb,
                     float* out, int64_t ld_out) {
  if (w.axis != Axis::K || w.k != g.kdim()) {
    throw Error("spmm_nm_conv_ff: the weight form is not the forward form of this convolution");
  }
  if (simd::spmm_kernel().vec * simd::spmm_kernel().panel_vecs > WindowSource::kMaxRuns) {
    throw Error("spmm_nm_conv_ff: this SIMD path's panel is wider than the window gather allows");
  }
  const WindowSource src{xpad, g, g.h + 2 * g.p, g.w + 2 * g.p};
  spmm_run(NMWeights{w}, src, nb * g.oh * g.ow, out, ld_out, false, false);
}

void spmm_nm_conv_bp(const NMCompressed& w, const ConvGeometry& g, const float* dyt, int64_t ld,
                     int64_t nb, float* dx) {
  if (w.axis != Axis::Cout || w.k != g.kdim()) {
    throw Error("spmm_nm_conv_bp: the weight form is not the backward form of this convolution");
  }
  const int64_t ohw = g.oh * g.ow, kdim = g.kdim(), kk = g.k * g.k, hw = g.h * g.w;
  if (nb <= 0) return;
  // Tiles of whole images, so that each thread scatters complete planes in col2im's order. A
  // tile's product (K x images*oh*ow) stays within about half of L2 and is scattered while
  // still there; the lowered product of the whole batch is never written to memory.
  constexpr int64_t kTileBytes = 512 * 1024;
  const int threads = std::max(1, omp_get_max_threads());
  int64_t tile = std::max<int64_t>(1, kTileBytes / (kdim * ohw * static_cast<int64_t>(sizeof(float))));
  tile = std::min(tile, std::max<int64_t>(1, nb / (2 * threads)));   // two tiles per thread at least
  const int64_t ntiles = (nb + tile - 1) / tile;
  const int64_t tile_floats = kdim * tile * ohw, plane_floats = padded_plane_floats(g);
  const auto scatter = [&](const float* dcol, int64_t cols, int64_t b0, int64_t nbt, float* padded) {
    for (int64_t c = 0; c < g.cin; ++c)
      for (int64_t b = 0; b < nbt; ++b)
        col2im_plane(g, dcol + c * kk * cols + b * ohw, cols, dx + ((b0 + b) * g.cin + c) * hw, padded);
  };
  if (ntiles < threads) {
    // Too few images to give every thread its own: each tile's product and scatter run on all
    // threads instead (the same bits: neither depends on the split).
    std::unique_ptr<float[]> dcol(new float[tile_floats]);
    for (int64_t b0 = 0; b0 < nb; b0 += tile) {
      const int64_t nbt = std::min(tile, nb - b0), cols = nbt * ohw;
      spmm_run(NMWeights{w}, MatrixSource{dyt + b0 * ohw, ld}, cols, dcol.get(), cols, false, false);
      col2im(g, dcol.get(), cols, nbt, dx + b0 * g.cin * hw);
    }
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    std::unique_ptr<float[]> dcol(new float[tile_floats]);
    std::unique_ptr<float[]> padded(new float[plane_floats]);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < ntiles; ++t) {
      const int64_t b0 = t * tile, nbt = std::min(tile, nb - b0), cols = nbt * ohw;
      spmm_run(NMWeights{w}, MatrixSource{dyt + b0 * ohw, ld}, cols, dcol.get(), cols, false, true);
      scatter(dcol.get(), cols, b0, nbt, padded.get());
    }
  }
}

int64_t conv_wu_images(const ConvGeometry& g) {
  return std::max<int64_t>(1, kConvWuPositions / (g.oh * g.ow));
}

void conv_wu(const ConvGeometry& g, int64_t cout, const float* xpad, const float* dy, int64_t nb,
             float* dw) {
  const int64_t ohw = g.oh * g.ow, kdim = g.kdim(), n = cout * kdim;
  const int64_t hp = g.h + 2 * g.p, wp = g.w + 2 * g.p, plane = hp * wp;
  if (nb <= 0 || n == 0) return;
  if (simd::spmm_kernel().vec * simd::spmm_kernel().panel_vecs > PositionSource::kMaxRuns) {
    throw Error("conv_wu: this SIMD path's panel is wider than the window packing allows");
  }
  // The tiles are fixed by the shape alone, so the sums do not depend on the thread count; the
  // threads take whole tiles, each an FP32 chain per weight over its images' positions.
  const int64_t tile = conv_wu_images(g), ntiles = (nb + tile - 1) / tile;
  std::unique_ptr<float[]> partial(new float[ntiles * n]);
  const int threads = std::max(1, omp_get_max_threads());
#pragma omp parallel num_threads(threads) if (threads > 1 && ntiles > 1)
  {
    // This thread's channels-last copy of one image (one channel is already channels-last).
    std::unique_ptr<float[]> xt;
    if (g.cin > 1) {
      xt.reset(new float[g.cin * plane + kRunBlock]);
      std::fill_n(xt.get() + g.cin * plane, kRunBlock, 0.0f);
    }
#pragma omp for schedule(static)
    for (int64_t t = 0; t < ntiles; ++t) {
      for (int64_t b = t * tile; b < std::min(nb, (t + 1) * tile); ++b) {
        const float* img = xpad + b * g.cin * plane;
        if (xt) {
          transpose(img, g.cin, plane, xt.get());
          img = xt.get();
        }
        const DenseLines a{dy + b * cout * ohw, ohw, cout, ohw};
        spmm_run(a, PositionSource{img, g, wp}, kdim, partial.get() + t * n, kdim, b > t * tile, true);
      }
    }
    // The tiles' partial gradients go into dw in image order, their columns from (ky, kx, c) back
    // to (c, ky, kx).
    const int64_t kk = g.k * g.k;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = i % kdim, j = i - r + (r % kk) * g.cin + r / kk;
      float s = dw[i];
      for (int64_t t = 0; t < ntiles; ++t) s += partial[t * n + j];
      dw[i] = s;
    }
  }
}

namespace {
std::atomic<int>& conv_lowering_flag() {
  // -1: not read yet; SAT_CONV_LOWERED=1 starts it on.
  static std::atomic<int> flag{-1};
  return flag;
}
}  // namespace

bool conv_lowering_forced() {
  std::atomic<int>& f = conv_lowering_flag();
  int v = f.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("SAT_CONV_LOWERED");
    v = e != nullptr && std::string(e) == "1" ? 1 : 0;
    int expected = -1;
    if (!f.compare_exchange_strong(expected, v)) v = expected;
  }
  return v == 1;
}

void force_conv_lowering(bool on) { conv_lowering_flag().store(on ? 1 : 0); }

const char* simd_path() { return simd::path_name(); }
const char* simd_paths_available() { return simd::available_paths(); }
bool force_simd_path(const std::string& name) { return simd::force_path(name.c_str()); }

}  // namespace sat::cpu
