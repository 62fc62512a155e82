#include "layers/common.hpp"

#include <cmath>

#include "cpu/weight_ops.hpp"
#include "sat/error.hpp"

namespace sat::layers {

void init_weight(Param& w, int64_t fan_in, Rng& rng) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in)) / std::sqrt(1.0 + 5.0);
  std::uniform_real_distribution<double> dist(-bound, bound);
  for (float& v : w.value) v = static_cast<float>(dist(rng));
}

void init_bias(Param& b, int64_t fan_in, Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  std::uniform_real_distribution<double> dist(-bound, bound);
  for (float& v : b.value) v = static_cast<float>(dist(rng));
}

void setup_sparse(SparseWeight& sw, Param& weight, int64_t cout, int64_t k, NM requested) {
  sw.weight = &weight;
  sw.cout = cout;
  sw.k = k;
  sw.dense_reason = nm_dense_reason(cout, k, requested);
  sw.nm = sw.dense_reason.empty() ? requested : NM{1, 1};
}

std::string sparsity_text(const SparseWeight& sw, Method method) {
  if (!sw.dense_reason.empty()) return "dense (" + sw.dense_reason + ")";
  if (!sw.sparse()) return "dense";
  switch (method) {
    case Method::dense: return "dense (method dense)";
    case Method::srste: return sw.nm.str() + " FF";
    case Method::bdwp: return sw.nm.str() + " FF+BP";
  }
  return "?";
}

void bad_input(const Layer& l, const std::string& what, const Shape& got) {
  throw Error(l.name + " (" + l.type() + "): expected input " + what + ", got " + shape_str(got));
}

LayerInfo layer_info(const Layer& l, double flops_ff, double flops_bp, double flops_wu,
                     int64_t params) {
  LayerInfo info{l.name, l.type(), l.in_shape, l.out_shape};
  info.flops_ff = flops_ff;
  info.flops_bp = flops_bp;
  info.flops_wu = flops_wu;
  info.params = params;
  return info;
}

LayerInfo weight_layer_info(const Layer& l, const SparseWeight& sw, Method method, double cols,
                            int64_t extra_params) {
  LayerInfo info{l.name, l.type(), l.in_shape, l.out_shape};
  info.flops_ff = 2 * cols * cpu::ff_macs_per_col(sw, method);
  info.flops_bp = 2 * cols * cpu::bp_macs_per_col(sw, method);
  info.flops_wu = 2 * cols * static_cast<double>(sw.cout * sw.k);
  info.params = sw.cout * sw.k + extra_params;
  info.sparsity = sparsity_text(sw, method);
  return info;
}

std::pair<int64_t, int64_t> window_output(const Layer& l, const Shape& in, int64_t k, int64_t s,
                                          int64_t p) {
  if (in.size() != 3) bad_input(l, "[channels, height, width]", in);
  // k and p come from a model file: a padding near 2^62 must be an error, not an overflow.
  const auto padded = [&](int64_t n) {
    int64_t twice = 0, out = 0;
    if (__builtin_mul_overflow(p, int64_t{2}, &twice) || __builtin_add_overflow(n, twice, &out)) {
      throw Error(l.name + " (" + l.type() + "): padding " + std::to_string(p) + " is too large");
    }
    return out;
  };
  if (padded(in[1]) < k || padded(in[2]) < k) {
    bad_input(l,
              "of height and width >= " + std::to_string(k - 2 * p) + " (kernel " +
                  std::to_string(k) + " is larger than the input padded by " + std::to_string(p) +
                  ")",
              in);
  }
  return {(in[1] + 2 * p - k) / s + 1, (in[2] + 2 * p - k) / s + 1};
}

}  // namespace sat::layers
