#include "sat/cpu_kernels.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "sat/error.hpp"

namespace sat::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  if (m == 0 || n == 0) return;
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

void transpose(const float* in, int64_t rows, int64_t cols, float* out) {
  constexpr int64_t T = 32;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r0 = 0; r0 < rows; r0 += T) {
    for (int64_t c0 = 0; c0 < cols; c0 += T) {
      const int64_t r1 = std::min(rows, r0 + T), c1 = std::min(cols, c0 + T);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
    }
  }
}

}  // namespace sat::cpu
