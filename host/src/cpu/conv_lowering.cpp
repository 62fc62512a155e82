// A convolution's lowering (im2col) and its adjoint (col2im), in the layout of
// sat/conv_geometry.hpp. One (channel, image) plane is the unit of work: the parallel entries
// split the planes over OpenMP threads, and spmm_nm_conv_bp scatters its per-thread tiles plane by
// plane with the same function, so the sums of every input-gradient pixel run in one order
// wherever they are computed.
#include <algorithm>
#include <vector>

#include "cpu/conv_lowering.hpp"
#include "sat/cpu_kernels.hpp"

namespace sat::cpu {

// Each plane is first copied into a zero-bordered buffer, so that the row copies need no bounds
// checks; the stride-1 copies are kept apart from the strided ones so that they vectorise.
void im2col_plane(const ConvGeometry& g, const float* plane, float* col, int64_t ld,
                  float* padded) {
  const int64_t wp = g.w + 2 * g.p;
  std::fill(padded, padded + (g.h + 2 * g.p) * wp, 0.0f);
  for (int64_t iy = 0; iy < g.h; ++iy) std::copy_n(plane + iy * g.w, g.w, padded + (iy + g.p) * wp + g.p);
  for (int64_t ky = 0; ky < g.k; ++ky) {
    for (int64_t kx = 0; kx < g.k; ++kx) {
      float* row = col + (ky * g.k + kx) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const float* in = padded + (oy * g.s + ky) * wp + kx;
        if (g.s == 1) {
          std::copy_n(in, g.ow, row + oy * g.ow);
          continue;
        }
        for (int64_t ox = 0; ox < g.ow; ++ox) row[oy * g.ow + ox] = in[ox * g.s];
      }
    }
  }
}

// Accumulates from +0 in a zero-bordered buffer in (ky, kx, oy, ox) order and crops: each pixel
// sums its entries in (ky, kx) order.
void col2im_plane(const ConvGeometry& g, const float* dcol, int64_t ld, float* plane,
                  float* padded) {
  const int64_t wp = g.w + 2 * g.p;
  std::fill(padded, padded + (g.h + 2 * g.p) * wp, 0.0f);
  for (int64_t ky = 0; ky < g.k; ++ky) {
    for (int64_t kx = 0; kx < g.k; ++kx) {
      const float* row = dcol + (ky * g.k + kx) * ld;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        float* out = padded + (oy * g.s + ky) * wp + kx;
        const float* r = row + oy * g.ow;
        if (g.s == 1) {
          for (int64_t ox = 0; ox < g.ow; ++ox) out[ox] += r[ox];
          continue;
        }
        for (int64_t ox = 0; ox < g.ow; ++ox) out[ox * g.s] += r[ox];
      }
    }
  }
  for (int64_t iy = 0; iy < g.h; ++iy) std::copy_n(padded + (iy + g.p) * wp + g.p, g.w, plane + iy * g.w);
}

int64_t padded_plane_floats(const ConvGeometry& g) { return (g.h + 2 * g.p) * (g.w + 2 * g.p); }

// Channel-major task order: a thread's consecutive tasks write neighbouring stretches of a col row.
void im2col(const ConvGeometry& g, const float* x, int64_t nb, float* col, int64_t ld) {
  const int64_t ohw = g.oh * g.ow, kk = g.k * g.k;
#pragma omp parallel
  {
    std::vector<float> padded(static_cast<size_t>(padded_plane_floats(g)));
#pragma omp for collapse(2) schedule(static)
    for (int64_t c = 0; c < g.cin; ++c) {
      for (int64_t b = 0; b < nb; ++b) {
        im2col_plane(g, x + (b * g.cin + c) * g.h * g.w, col + c * kk * ld + b * ohw, ld,
                     padded.data());
      }
    }
  }
}

void col2im(const ConvGeometry& g, const float* dcol, int64_t ld, int64_t nb, float* dx) {
  const int64_t ohw = g.oh * g.ow, kk = g.k * g.k;
#pragma omp parallel
  {
    std::vector<float> padded(static_cast<size_t>(padded_plane_floats(g)));
#pragma omp for collapse(2) schedule(static)
    for (int64_t c = 0; c < g.cin; ++c) {
      for (int64_t b = 0; b < nb; ++b) {
        col2im_plane(g, dcol + c * kk * ld + b * ohw, ld, dx + (b * g.cin + c) * g.h * g.w,
                     padded.data());
      }
    }
  }
}

}  // namespace sat::cpu
