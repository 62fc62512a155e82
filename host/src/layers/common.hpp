#pragma once
// Pieces shared by the layer implementations.
#include <string>
#include <utility>
#include <vector>

#include "sat/layer.hpp"

namespace sat::layers {

// Kaiming-uniform initialisation (bound sqrt(6 / fan_in) / sqrt(1 + a^2) with a = sqrt(5), PyTorch's
// default for Linear/Conv weights) and its bias bound 1/sqrt(fan_in).
void init_weight(Param& w, int64_t fan_in, Rng& rng);
void init_bias(Param& b, int64_t fan_in, Rng& rng);

// Sets up the N:M state of weight W[cout][k] for the requested setting: if the shape does not
// divide by M along both axes the layer stays dense and `dense_reason` says why.
void setup_sparse(SparseWeight& sw, Param& weight, int64_t cout, int64_t k, NM requested);

// The summary's sparsity column for a weight under `method`.
std::string sparsity_text(const SparseWeight& sw, Method method);

// The summary row of a layer without N:M weights: per-sample FLOPs of each pass and its parameters.
LayerInfo layer_info(const Layer& l, double flops_ff, double flops_bp, double flops_wu = 0,
                     int64_t params = 0);

// The summary row of a layer whose work is one weight product applied to `cols` columns per sample
// (positions of a convolution, tokens of a linear layer): FF/BP/WU FLOPs at the effective
// sparsity, the weight's parameters plus `extra_params`, and the sparsity text.
LayerInfo weight_layer_info(const Layer& l, const SparseWeight& sw, Method method, double cols,
                            int64_t extra_params);

// Output size of a sliding window (convolution, pooling) over a [C, H, W] input, checking that the
// kernel fits the padded input. Returns {OH, OW}.
std::pair<int64_t, int64_t> window_output(const Layer& l, const Shape& in, int64_t kernel,
                                          int64_t stride, int64_t padding);

// Throws sat::Error "<layer name> (<type>): expected input <what>, got <shape>".
[[noreturn]] void bad_input(const Layer& l, const std::string& what, const Shape& got);

}  // namespace sat::layers
