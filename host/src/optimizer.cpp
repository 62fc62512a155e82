// SGD with momentum and weight decay, plus the SR-STE term, then pre-generation (DESIGN §3).
#include <algorithm>
#include <cmath>

#include "cpu/simd.hpp"

#include "sat/backend.hpp"
#include "sat/error.hpp"
#include "sat/arch/sgd_rule.hpp"

namespace sat {

void sgd_update(Model& model, const UpdateConfig& cfg) {
  // SR-STE adds lambda * (1 - mask_F) * W to the gradient of every weight that FF prunes.
  std::vector<const SparseWeight*> srste_of_param;
  std::vector<Param*> params = model.params();
  srste_of_param.assign(params.size(), nullptr);
  if (cfg.method != Method::dense) {
    for (const SparseWeight* sw : model.sparse_weights()) {
      if (!sw->ff_sparse(cfg.method)) continue;
      for (size_t i = 0; i < params.size(); ++i) {
        if (params[i] == sw->weight) srste_of_param[i] = sw;
      }
    }
  }
  const float lr = static_cast<float>(cfg.lr), mu = static_cast<float>(cfg.momentum);
  const float lambda = static_cast<float>(cfg.srste_lambda);
  for (size_t pi = 0; pi < params.size(); ++pi) {
    Param& p = *params[pi];
    if (!p.trainable) continue;
    const SgdHyper h{lr, mu, p.decay ? static_cast<float>(cfg.weight_decay) : 0.0f, lambda};
    const uint8_t* mask = srste_of_param[pi] ? srste_of_param[pi]->mask_f.data() : nullptr;
    float* w = p.value.data();
    float* v = p.momentum.data();
    const float* g = p.grad.data();
    const int64_t n = p.numel();
    // Chunks of the element-wise rule on the SIMD path chosen at run time (cpu/simd.cpp).
    constexpr int64_t kChunk = 16384;
#pragma omp parallel for schedule(static) if (n > 2 * kChunk)
    for (int64_t i = 0; i < n; i += kChunk) {
      cpu::simd::sgd_range(w + i, v + i, g + i, mask ? mask + i : nullptr, std::min(kChunk, n - i), h);
    }
  }
  for (Param* p : params) {
    for (float x : p->value) {
      if (!std::isfinite(x)) {
        throw Error("training diverged: parameter " + p->name +
                    " is not finite after the update (lower the learning rate)");
      }
    }
  }
  model.regenerate(cfg.method);
}

}  // namespace sat
