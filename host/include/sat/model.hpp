#pragma once
// A model: a sequence of layers (containers such as `residual` nest further sequences), built from a
// JSON description (docs/model-format.md) or in code.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sat/layer.hpp"

namespace sat {

// The training recipe a model file may carry; CLI flags override it.
struct Recipe {
  int epochs = 5;
  int batch = 128;
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double srste_lambda = 2e-4;
  std::string schedule = "cosine";           // "cosine" | "step" | "constant"
  int step_every = 2;                        // "step": multiply lr by step_gamma every step_every epochs
  double step_gamma = 0.1;
  double warmup_epochs = 0;
  uint64_t seed = 1;
};

// A layer's JSON description and where it sits, for names and error messages.
struct LayerSpec {
  const nlohmann::json& json;
  std::string origin;                        // the model file, e.g. "models/lenet5.json"
  std::string path;                          // e.g. "layers[5].body[0]"; the default layer name
  NM model_nm;                               // the model's N:M, which a layer's "nm" overrides

  std::string where() const;                 // "models/lenet5.json: layers[3] (conv2d)"
  std::string name() const;                  // "name" field, else path

  std::string type() const;
  // Field access with errors naming `where` and the field.
  int64_t get_int(const char* key) const;                  // required
  int64_t get_int(const char* key, int64_t fallback) const;
  double get_double(const char* key, double fallback) const;
  bool get_bool(const char* key, bool fallback) const;
  std::string get_string(const char* key, const std::string& fallback) const;
  bool has(const char* key) const;
  NM nm() const;                             // "nm": "2:8" | "dense", else model_nm
  [[noreturn]] void fail(const std::string& msg) const;
  // Keys this layer type accepts; any other key is an error (catches typos).
  void allow_only(std::initializer_list<const char*> keys) const;
};

// Builds any layer type from its description (the one table of layer types lives behind this).
LayerPtr make_layer(const LayerSpec& spec);
// Builds a list of layers from a JSON array (used by the model and by containers); `path` names
// the array ("layers", "layers[5].body") and each layer gets its name from LayerSpec::name().
std::vector<LayerPtr> make_layers(const nlohmann::json& array, const std::string& origin,
                                  const std::string& path, NM model_nm);

// A sequence of layers, shared by the model and by containers. An empty sequence is the identity.
Shape build_sequence(std::vector<LayerPtr>& layers, const Shape& in, Rng& rng);
Tensor forward_sequence(std::vector<LayerPtr>& layers, const Tensor& x, const StepContext& ctx);
Tensor backward_sequence(std::vector<LayerPtr>& layers, const Tensor& dy, const StepContext& ctx);

class Model {
 public:
  std::string name;
  Shape input;                               // per sample, e.g. [1, 28, 28]
  int classes = 0;
  NM nm{1, 1};                               // model-wide N:M request
  Recipe recipe;
  std::string source;                        // the JSON text it was built from
  std::vector<LayerPtr> layers;

  // Parses and builds (shape inference, parameter init with recipe.seed). Throws sat::Error naming
  // the file and the field.
  static Model from_json_text(const std::string& text, const std::string& origin,
                              std::optional<NM> nm_override = std::nullopt);
  static Model load(const std::string& path, std::optional<NM> nm_override = std::nullopt);

  // Runs build() over the layers (shapes, parameter initialisation). Called by from_json_text;
  // call it after adding layers in code. The weight forms the products read are made for a method
  // by regenerate() (Backend::prepare calls it), not here.
  void build(uint64_t seed);

  std::vector<Param*> params();
  std::vector<SparseWeight*> sparse_weights();
  std::vector<LayerInfo> describe(Method method) const;
  int64_t num_params() const;

  Tensor forward(const Tensor& x, const StepContext& ctx);
  void backward(const Tensor& dlogits, const StepContext& ctx);
  void zero_grad();
  // Pre-generation of every sparse weight's compressed forms.
  void regenerate(Method method);
};

// Softmax cross-entropy, mean over the batch. Returns the loss; writes dL/dlogits (BF16) when
// `dlogits` is given and the number of correct argmax predictions when `correct` is given.
float softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels, Tensor* dlogits,
                            int* correct);

// "lenet5" -> "<models dir>/lenet5.json"; a path (with '/' or ending in .json) is used as given.
// The models dir is $SAT_MODELS_DIR, else the source tree's models/. Throws sat::Error listing the
// models there when the name is not one of them.
std::string resolve_model_path(const std::string& name_or_path);

}  // namespace sat
