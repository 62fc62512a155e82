#pragma once
// Single primitives on plain FP32 arrays, as `sat op` runs them: the CPU reference of
// Backend::gemm. The contract (docs/user-guide.md, `sat op gemm --help`):
//   ff: a = X  [B][K],    b = W [Cout][K], c = X * prune_k(W)^T     [B][Cout]
//   bp: a = dY [B][Cout], b = W [Cout][K], c = dY * prune_cout(W)   [B][K]
//   wu: a = dY [B][Cout], b = X [B][K],    c = dY^T * X             [Cout][K]   (dense; nm ignored)
// Inputs are rounded to BF16 on entry (masks chosen on the FP32 values first), products accumulate
// in FP32 and c is returned unrounded. nm.dense() means no pruning. Throws sat::Error on shapes
// that are not 2-D, do not match (naming both), are empty, or do not divide by M along the
// pruned axis.
#include <memory>
#include <vector>

#include "sat/backend.hpp"
#include "sat/nm.hpp"
#include "sat/tensor.hpp"

namespace sat {

const char* gemm_mode_name(GemmMode mode);

// A validated gemm: shapes checked as above, and the weight set up with the one form the mode's
// pass reads (W_F for ff, W_B for bp, dense BF16 when nm is dense; none for wu, whose b is X).
// Shared by every backend's gemm so that all accept and reject the same inputs.
struct GemmProblem {
  GemmMode mode = GemmMode::ff;
  int64_t batch = 0, cout = 0, k = 0;
  Method method = Method::bdwp;        // dense when nm is dense
  Param weight;                        // [cout][k]: b in ff/bp; receives the gradient in wu
  SparseWeight sw;                     // points at `weight`
};
std::unique_ptr<GemmProblem> make_gemm_problem(GemmMode mode, NM nm, const std::vector<float>& a,
                                               const Shape& a_shape, const std::vector<float>& b,
                                               const Shape& b_shape);

std::vector<float> cpu_gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                            const std::vector<float>& b, Shape b_shape, Shape* c_shape);

}  // namespace sat
