#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "layers/layers.hpp"
#include "sat/error.hpp"

namespace sat {

namespace {
using Factory = LayerPtr (*)(const LayerSpec&);
const std::map<std::string, Factory>& table() {
  static const std::map<std::string, Factory> t = {
      {"linear", layers::make_linear},
      {"conv2d", layers::make_conv2d},
      {"relu", layers::make_relu},
      {"gelu", layers::make_gelu},
      {"maxpool2d", layers::make_maxpool2d},
      {"avgpool2d", layers::make_avgpool2d},
      {"global_avgpool", layers::make_global_avgpool},
      {"flatten", layers::make_flatten},
      {"batchnorm2d", layers::make_batchnorm2d},
      {"layernorm", layers::make_layernorm},
      {"residual", layers::make_residual},
      {"attention", layers::make_attention},
      {"patch_embed", layers::make_patch_embed},
      {"token_mean", layers::make_token_mean},
  };
  return t;
}
}  // namespace

LayerPtr make_layer(const LayerSpec& spec) {
  const std::string type = spec.type();
  const auto it = table().find(type);
  if (it == table().end()) {
    std::string known;
    for (const auto& [name, f] : table()) known += (known.empty() ? "" : ", ") + name;
    spec.fail("unknown layer type '" + type + "' (known: " + known + ")");
  }
  return it->second(spec);
}

std::vector<LayerPtr> make_layers(const nlohmann::json& array, const std::string& origin,
                                  const std::string& path, NM model_nm) {
  if (!array.is_array()) throw Error(origin + ": " + path + ": expected an array of layers");
  // Containers nest by path ("layers[3].body[0].body"): one '[' a level. Bounded, so that building,
  // lowering and describing a model (recursive over containers) never run out of stack.
  if (std::count(path.begin(), path.end(), '[') > kMaxLayerNesting) {
    const std::string shown = path.size() > 80 ? path.substr(0, 80) + "..." : path;
    throw Error(origin + ": " + shown + ": containers nested more than " + std::to_string(kMaxLayerNesting) +
                " levels deep");
  }
  std::vector<LayerPtr> out;
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    if (!array[i].is_object()) {
      throw Error(origin + ": " + p + ": expected an object with a \"type\"");
    }
    const LayerSpec spec{array[i], origin, p, model_nm};
    LayerPtr layer = make_layer(spec);
    layer->name = spec.name();
    out.push_back(std::move(layer));
  }
  return out;
}

}  // namespace sat
