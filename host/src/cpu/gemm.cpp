#include "sat/cpu_kernels.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "cpu/dnnl_conv.hpp"
#include "sat/error.hpp"

namespace sat::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  if (m == 0 || n == 0) return;
  dnnl_follow_simd_env();
  // oneDNN's sgemm is row-major and runs on the OpenMP threads libsat's own loops use: no second
  // thread pool competing for the cores.
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                      lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) {
    throw Error("oneDNN sgemm failed (status " + std::to_string(static_cast<int>(st)) + ") on " +
                std::to_string(m) + " x " + std::to_string(n) + " x " + std::to_string(k));
  }
}

void spmm_nm_reference(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols,
                       float* out, int64_t ld_out, bool accumulate) {
  const int64_t groups = w.groups();
  const int n = w.nm.n, m = w.nm.m;
  for (int64_t l = 0; l < w.lines(); ++l) {
    float* o = out + l * ld_out;
    if (!accumulate) std::fill(o, o + cols, 0.0f);
    for (int64_t g = 0; g < groups; ++g) {
      for (int j = 0; j < n; ++j) {
        const int64_t e = (l * groups + g) * n + j;
        const float v = w.values[e];
        const float* row = in + (g * m + w.index[e]) * ld_in;
        for (int64_t p = 0; p < cols; ++p) o[p] = std::fma(v, row[p], o[p]);
      }
    }
  }
}

namespace {
// One tile: 4x4 blocks through SSE registers (x86-64's baseline, so no dispatch), the edges one
// float at a time. The scalar loop stored a float per strided write and took 4% of a LeNet-5
// step once WU transposed each image.
void transpose_tile(const float* in, int64_t rows, int64_t cols, float* out, int64_t r0, int64_t r1,
                    int64_t c0, int64_t c1) {
  int64_t r = r0;
#if defined(__SSE2__)
  for (; r + 4 <= r1; r += 4) {
    int64_t c = c0;
    for (; c + 4 <= c1; c += 4) {
      __m128 a = _mm_loadu_ps(in + r * cols + c), b = _mm_loadu_ps(in + (r + 1) * cols + c);
      __m128 d = _mm_loadu_ps(in + (r + 2) * cols + c), e = _mm_loadu_ps(in + (r + 3) * cols + c);
      _MM_TRANSPOSE4_PS(a, b, d, e);
      _mm_storeu_ps(out + c * rows + r, a);
      _mm_storeu_ps(out + (c + 1) * rows + r, b);
      _mm_storeu_ps(out + (c + 2) * rows + r, d);
      _mm_storeu_ps(out + (c + 3) * rows + r, e);
    }
    for (; c < c1; ++c)
      for (int64_t q = r; q < r + 4; ++q) out[c * rows + q] = in[q * cols + c];
  }
#endif
  for (; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
}
}  // namespace

void transpose(const float* in, int64_t rows, int64_t cols, float* out) {
  constexpr int64_t T = 32;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r0 = 0; r0 < rows; r0 += T) {
    for (int64_t c0 = 0; c0 < cols; c0 += T)
      transpose_tile(in, rows, cols, out, r0, std::min(rows, r0 + T), c0, std::min(cols, c0 + T));
  }
}

}  // namespace sat::cpu
