#pragma once
// The one-plane steps of a convolution's lowering, shared by the parallel im2col / col2im of
// sat/cpu_kernels.hpp and the implicit backward product (cpu/spmm.cpp), which scatters its
// per-thread tiles with col2im_plane so that every pixel's sum runs in the same order.
#include <cstdint>

#include "sat/conv_geometry.hpp"

namespace sat::cpu {

// Floats of one zero-bordered plane, (h + 2p) x (w + 2p): the scratch each plane step needs.
int64_t padded_plane_floats(const ConvGeometry& g);
// col rows (ky, kx) of one input plane: col[(ky*k + kx) * ld + oy*ow + ox].
void im2col_plane(const ConvGeometry& g, const float* plane, float* col, int64_t ld, float* padded);
// One input-gradient plane from its k*k dcol rows (laid out as im2col_plane writes them).
void col2im_plane(const ConvGeometry& g, const float* dcol, int64_t ld, float* plane, float* padded);

}  // namespace sat::cpu
