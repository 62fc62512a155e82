// Temporary: the transformer family is being written; delete this file when it lands.
#include "layers/layers.hpp"
namespace sat::layers {
LayerPtr make_gelu(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_layernorm(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_residual(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_attention(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_patch_embed(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_token_mean(const LayerSpec& spec) { spec.fail("not built yet"); }
}  // namespace sat::layers
