#pragma once
// Factories of the layer lowerings, one per layer type; lowerings.cpp maps a layer's type() to its
// factory. Each lowering lives in its own file lower_<type>.cpp beside this one.
#include <memory>

#include "sat/lowering.hpp"

namespace sat::compiler {

std::unique_ptr<LayerLowering> make_linear_lowering();
std::unique_ptr<LayerLowering> make_conv2d_lowering();
std::unique_ptr<LayerLowering> make_relu_lowering();
std::unique_ptr<LayerLowering> make_fused_relu_lowering();   // a ReLU fused into the layer before
std::unique_ptr<LayerLowering> make_gelu_lowering();
std::unique_ptr<LayerLowering> make_maxpool2d_lowering();
std::unique_ptr<LayerLowering> make_avgpool2d_lowering();
std::unique_ptr<LayerLowering> make_global_avgpool_lowering();
std::unique_ptr<LayerLowering> make_flatten_lowering();
std::unique_ptr<LayerLowering> make_batchnorm2d_lowering();
std::unique_ptr<LayerLowering> make_layernorm_lowering();
std::unique_ptr<LayerLowering> make_residual_lowering();
std::unique_ptr<LayerLowering> make_attention_lowering();
std::unique_ptr<LayerLowering> make_patch_embed_lowering();
std::unique_ptr<LayerLowering> make_token_mean_lowering();

}  // namespace sat::compiler
