#pragma once
// The three products of a BDWP training step for one weight W[cout][k], in feature-major layout
// (a matrix [features][P] whose P columns are samples, or samples x output positions).
// Which operand each product reads under which method is decided here and nowhere else:
//   FF: Yt = W_F * Xt            (N:M along K; dense W under `dense`)
//   BP: dXt = W_B^T * dYt        (N:M along Cout under bdwp; dense W_F under srste; W under dense)
//   WU: dW += dYt * Xt^T         (always dense, FP32 into weight->grad)
#include <cstdint>

#include "sat/layer.hpp"

namespace sat::cpu {

void ff_product(const SparseWeight& w, Method method, const float* xt, int64_t cols, float* yt);
void bp_product(const SparseWeight& w, Method method, const float* dyt, int64_t cols, float* dxt);
void wu_product(const SparseWeight& w, const float* dyt, const float* xt, int64_t cols);

// The multiply-adds each product performs per column of P (for summaries and benchmarks).
double ff_macs_per_col(const SparseWeight& w, Method method);
double bp_macs_per_col(const SparseWeight& w, Method method);

}  // namespace sat::cpu
