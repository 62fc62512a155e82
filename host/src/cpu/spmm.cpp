#include "cpu/gemm.hpp"

#include <algorithm>

namespace sat::cpu {

// First version: lines split across threads, each line an FP32 axpy per kept weight.
void spmm_nm(const NMCompressed& w, const float* in, int64_t ld_in, int64_t cols, float* out,
             int64_t ld_out, bool accumulate) {
  const int64_t groups = w.groups();
  const int n = w.nm.n, m = w.nm.m;
#pragma omp parallel for schedule(static)
  for (int64_t l = 0; l < w.lines(); ++l) {
    float* o = out + l * ld_out;
    if (!accumulate) std::fill(o, o + cols, 0.0f);
    for (int64_t g = 0; g < groups; ++g) {
      for (int j = 0; j < n; ++j) {
        const int64_t e = (l * groups + g) * n + j;
        const float v = w.values[e];
        const float* row = in + (g * m + w.index[e]) * ld_in;
        for (int64_t p = 0; p < cols; ++p) o[p] += v * row[p];
      }
    }
  }
}

}  // namespace sat::cpu
