#pragma once
// Dense 2-D convolutions through oneDNN (FF and BP of a conv2d layer whose product is dense; WU
// is cpu::conv_wu, whose sums do not depend on the thread count or the SIMD path):
// no im2col copy, oneDNN's own blocked layouts inside, NCHW at the edges. FP32 throughout
// (inputs and weights arrive BF16-rounded in FP32; accumulation is FP32), and for a given thread
// count the same inputs give the same bits (oneDNN's CPU convolutions split the work statically).
#include <cstdint>
#include <memory>
#include <vector>

#include "sat/conv_geometry.hpp"

namespace sat::cpu {

// Caps oneDNN's kernels where SAT_SIMD restricts the CPU kernels below AVX-512 ("avx2": AVX2;
// "portable": SSE4.1, oneDNN's floor), unless ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA says
// otherwise: the order of oneDNN's sums depends on its ISA, so SAT_SIMD=avx2 then gives an AVX2
// machine's bits. Once per process, before oneDNN's first primitive (oneDNN fixes its ISA then).
void dnnl_follow_simd_env();

class DnnlConv {
 public:
  DnnlConv(const ConvGeometry& g, int64_t cout, bool bias);
  ~DnnlConv();
  DnnlConv(const DnnlConv&) = delete;
  DnnlConv& operator=(const DnnlConv&) = delete;

  // y[nb][cout][oh][ow] = conv(x[nb][cin][h][w], w[cout][cin][k][k]) + bias (bias null: none).
  void forward(const float* x, int64_t nb, const float* w, const float* bias, float* y);
  // dx[nb][cin][h][w] = the input gradient of dy[nb][cout][oh][ow] through w.
  void backward_data(const float* dy, int64_t nb, const float* w, float* dx);

 private:
  struct Plan;                       // the primitives of one batch size
  Plan& plan(int64_t nb);
  ConvGeometry g_;
  int64_t cout_;
  bool bias_;
  std::vector<std::unique_ptr<Plan>> plans_;   // the batch sizes seen lately (a few)
};

}  // namespace sat::cpu
