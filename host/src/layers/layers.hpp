#pragma once
// Factories of every layer type. The table mapping a "type" string to its factory is in
// registry.cpp; each layer lives in its own file beside this one.
#include "sat/model.hpp"

namespace sat::layers {

LayerPtr make_linear(const LayerSpec& spec);
LayerPtr make_conv2d(const LayerSpec& spec);
LayerPtr make_relu(const LayerSpec& spec);
LayerPtr make_gelu(const LayerSpec& spec);
LayerPtr make_maxpool2d(const LayerSpec& spec);
LayerPtr make_avgpool2d(const LayerSpec& spec);
LayerPtr make_global_avgpool(const LayerSpec& spec);
LayerPtr make_flatten(const LayerSpec& spec);
LayerPtr make_batchnorm2d(const LayerSpec& spec);
LayerPtr make_layernorm(const LayerSpec& spec);
LayerPtr make_residual(const LayerSpec& spec);
LayerPtr make_attention(const LayerSpec& spec);
LayerPtr make_patch_embed(const LayerSpec& spec);
LayerPtr make_token_mean(const LayerSpec& spec);

}  // namespace sat::layers
