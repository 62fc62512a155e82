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
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sat/backend.hpp"
#include "sat/layer.hpp"
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

// One layer of `sat op layer` (and the Python module's sat.layer): built from its JSON description,
// named "op", on a per-sample input shape, its parameters initialised with seed 1; run() is one
// forward pass in training mode and one backward pass, as the training step runs them.
class LayerOp {
 public:
  // `origin` names where the description came from, for errors ("--spec", a file).
  LayerOp(const nlohmann::json& spec, const std::string& origin, const Shape& input_shape, NM nm);

  const Shape& input_shape() const { return input_shape_; }
  Shape output_shape(int64_t batch) const;                 // [batch, ...per-sample output]
  const std::vector<Param*>& params() const { return params_; }
  std::string key(const Param& p) const;                   // its name after "op.": "weight"
  Param* find(const std::string& key) const;               // nullptr where there is none

  // Throws sat::Error "<x_what> is [..], expected [B, ..]" or "<dy_what> is [..], but the layer's
  // output is [..]" when x is not [B, ...input] or dy not the output of x.
  void check_shapes(const Shape& x, const Shape& dy, const std::string& x_what, const std::string& dy_what) const;
  // "<weight>: N:M does not apply (<reason>); it runs dense" for each sparse weight that runs dense
  // although `method` prunes.
  std::vector<std::string> dense_notes(Method method) const;
  // Regenerates the weight forms for `method`, zeroes the gradients, runs forward and backward;
  // each trainable parameter's gradient is then in its Param::grad.
  void run(Method method, const Tensor& x, const Tensor& dy, Tensor& y, Tensor& dx);

 private:
  LayerPtr layer_;
  Shape input_shape_;
  std::vector<Param*> params_;
  std::vector<SparseWeight*> sparse_;
};

}  // namespace sat
