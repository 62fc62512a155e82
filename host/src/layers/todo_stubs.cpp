// Temporary: layer types being written in parallel. Each throws until its file lands.
#include "layers/layers.hpp"
#include "sat/error.hpp"

namespace sat::layers {
#define SAT_PENDING(fn) \
  LayerPtr fn(const LayerSpec& spec) { spec.fail("layer type not built yet"); }
SAT_PENDING(make_conv2d)
SAT_PENDING(make_gelu)
SAT_PENDING(make_maxpool2d)
SAT_PENDING(make_avgpool2d)
SAT_PENDING(make_global_avgpool)
SAT_PENDING(make_batchnorm2d)
SAT_PENDING(make_layernorm)
SAT_PENDING(make_residual)
SAT_PENDING(make_attention)
SAT_PENDING(make_patch_embed)
SAT_PENDING(make_token_mean)
}  // namespace sat::layers
