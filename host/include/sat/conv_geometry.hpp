#pragma once
// The shape of a 2-D convolution as im2col lowers it, dependency-free so that the host layers and
// the CUDA kernels (which lower on the device) share one definition. The lowered matrix is
// col[cin*k*k][nb*oh*ow]: row (c, ky, kx) = (c*k + ky)*k + kx, column b*oh*ow + oy*ow + ox, entry
// x[b][c][oy*s - p + ky][ox*s - p + kx] (0 outside the image). SAT_HD: the kernels use it.
#include <cstdint>

#include "sat/arch/hd.hpp"

namespace sat {

struct ConvGeometry {
  int64_t cin, h, w;   // input planes
  int64_t k, s, p;     // square kernel, stride, padding
  int64_t oh, ow;      // output planes
  SAT_HD int64_t kdim() const { return cin * k * k; }
};

}  // namespace sat
