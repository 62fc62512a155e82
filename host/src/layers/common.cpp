#include "layers/common.hpp"

#include <cmath>

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

}  // namespace sat::layers
