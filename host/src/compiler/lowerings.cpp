// The one table from layer type to its lowering (compare layers/registry.cpp for the CPU layers).
#include "compiler/lowerings.hpp"

#include <string>

#include "sat/error.hpp"

namespace sat::compiler {

namespace {

using Factory = std::unique_ptr<LayerLowering> (*)();

struct Entry {
  const char* type;
  Factory make;
};

const Entry kLowerings[] = {
    {"linear", make_linear_lowering},
    {"conv2d", make_conv2d_lowering},
    {"relu", make_relu_lowering},
    {"maxpool2d", make_maxpool2d_lowering},
    {"avgpool2d", make_avgpool2d_lowering},
    {"global_avgpool", make_global_avgpool_lowering},
    {"flatten", make_flatten_lowering},
    {"gelu", make_gelu_lowering},
    {"batchnorm2d", make_batchnorm2d_lowering},
    {"layernorm", make_layernorm_lowering},
    {"residual", make_residual_lowering},
    {"attention", make_attention_lowering},
    {"patch_embed", make_patch_embed_lowering},
    {"token_mean", make_token_mean_lowering},
};

}  // namespace

std::unique_ptr<LayerLowering> make_lowering(const Layer& layer) {
  const std::string type = layer.type();
  for (const Entry& e : kLowerings) {
    if (type == e.type) return e.make();
  }
  throw Error(layer.name + " (" + type + "): the accelerator scheduler has no lowering for layer type '" +
              type + "'");
}

}  // namespace sat::compiler
