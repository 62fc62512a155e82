#include "sat/model.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "json_field.hpp"
#include "sat/error.hpp"

namespace sat {

using nlohmann::json;

// ---- LayerSpec ------------------------------------------------------------------------------

std::string LayerSpec::type() const {
  if (!json.contains("type") || !json["type"].is_string()) {
    throw Error(origin + ": " + path + ": missing string field \"type\"");
  }
  return json["type"].get<std::string>();
}

std::string LayerSpec::where() const { return origin + ": " + path + " (" + type() + ")"; }

std::string LayerSpec::name() const {
  if (json.contains("name")) {
    if (!json["name"].is_string()) fail("\"name\" must be a string");
    return json["name"].get<std::string>();
  }
  return path;
}

void LayerSpec::fail(const std::string& msg) const { throw Error(where() + ": " + msg); }

bool LayerSpec::has(const char* key) const { return json.contains(key); }

int64_t LayerSpec::get_int(const char* key) const {
  if (!json.contains(key)) fail(std::string("missing field \"") + key + "\"");
  return get_int(key, 0);
}

int64_t LayerSpec::get_int(const char* key, int64_t fallback) const {
  if (!json.contains(key)) return fallback;
  const auto& v = json[key];
  if (!v.is_number_integer()) fail(std::string("field \"") + key + "\" must be an integer");
  return v.get<int64_t>();
}

double LayerSpec::get_double(const char* key, double fallback) const {
  if (!json.contains(key)) return fallback;
  const auto& v = json[key];
  if (!v.is_number()) fail(std::string("field \"") + key + "\" must be a number");
  return v.get<double>();
}

bool LayerSpec::get_bool(const char* key, bool fallback) const {
  if (!json.contains(key)) return fallback;
  const auto& v = json[key];
  if (!v.is_boolean()) fail(std::string("field \"") + key + "\" must be true or false");
  return v.get<bool>();
}

std::string LayerSpec::get_string(const char* key, const std::string& fallback) const {
  if (!json.contains(key)) return fallback;
  const auto& v = json[key];
  if (!v.is_string()) fail(std::string("field \"") + key + "\" must be a string");
  return v.get<std::string>();
}

NM LayerSpec::nm() const {
  if (!json.contains("nm")) return model_nm;
  try {
    return NM::parse(get_string("nm", ""));
  } catch (const Error& e) {
    fail(e.what());
  }
}

void LayerSpec::allow_only(std::initializer_list<const char*> keys) const {
  std::set<std::string> ok = {"type", "name"};
  for (const char* k : keys) ok.insert(k);
  for (const auto& [key, value] : json.items()) {
    if (!ok.count(key)) {
      std::string list;
      for (const auto& k : ok) list += (list.empty() ? "" : ", ") + k;
      fail("unknown field \"" + key + "\" (allowed: " + list + ")");
    }
  }
}

// ---- Model ----------------------------------------------------------------------------------

namespace {

template <typename T>
T field(const json& j, const char* key, const std::string& where, T fallback) {
  if (!j.contains(key)) return fallback;
  T out{};
  if (!json_field::read(j[key], out)) {
    throw Error(where + ": field \"" + key + "\" has the wrong type or is out of range");
  }
  return out;
}

// An integer field in [lo, hi]: a float (1e12), a string or a value outside is refused, naming the
// field, the range and what was there (a float once read as a wrapped integer).
int64_t int_field(const json& j, const char* key, const std::string& where, int64_t lo, int64_t hi) {
  const json& v = j[key];
  bool in_range = false;
  if (v.is_number_unsigned()) {   // non-negative integers parse as unsigned
    const uint64_t u = v.get<uint64_t>();
    in_range = (lo <= 0 || u >= static_cast<uint64_t>(lo)) && (hi >= 0 && u <= static_cast<uint64_t>(hi));
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    in_range = i >= lo && i <= hi;
  }
  if (!in_range) {
    throw Error(where + ": field \"" + key + "\" must be an integer between " + std::to_string(lo) + " and " +
                std::to_string(hi) + ", got " + v.dump());
  }
  return v.get<int64_t>();
}

Recipe parse_recipe(const json& j, const std::string& where) {
  Recipe r;
  if (!j.is_object()) throw Error(where + ": \"recipe\" must be an object");
  static const std::set<std::string> known = {"epochs", "batch", "lr", "momentum", "weight_decay",
                                              "srste_lambda", "schedule", "step_every", "step_gamma",
                                              "warmup_epochs", "seed"};
  for (const auto& [key, v] : j.items()) {
    if (!known.count(key)) throw Error(where + ": recipe: unknown field \"" + key + "\"");
  }
  const std::string w = where + ": recipe";
  r.epochs = field(j, "epochs", w, r.epochs);
  r.batch = field(j, "batch", w, r.batch);
  r.lr = field(j, "lr", w, r.lr);
  r.momentum = field(j, "momentum", w, r.momentum);
  r.weight_decay = field(j, "weight_decay", w, r.weight_decay);
  r.srste_lambda = field(j, "srste_lambda", w, r.srste_lambda);
  r.schedule = field(j, "schedule", w, r.schedule);
  r.step_every = field(j, "step_every", w, r.step_every);
  r.step_gamma = field(j, "step_gamma", w, r.step_gamma);
  r.warmup_epochs = field(j, "warmup_epochs", w, r.warmup_epochs);
  r.seed = field(j, "seed", w, r.seed);
  if (r.epochs < 1) throw Error(w + ": epochs must be >= 1");
  if (r.batch < 1) throw Error(w + ": batch must be >= 1");
  if (!(r.lr > 0)) throw Error(w + ": lr must be > 0");
  if (r.schedule != "cosine" && r.schedule != "step" && r.schedule != "constant") {
    throw Error(w + ": schedule '" + r.schedule + "' is not cosine, step or constant");
  }
  return r;
}

}  // namespace

Model Model::from_json_text(const std::string& text, const std::string& origin,
                            std::optional<NM> nm_override) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {   // not only parse_error: a number like 1e400 is out_of_range
    throw Error(origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(origin + ": a model description is a JSON object");
  static const std::set<std::string> known = {"name", "input", "classes", "nm", "recipe", "layers",
                                              "description"};
  for (const auto& [key, v] : j.items()) {
    if (!known.count(key)) throw Error(origin + ": unknown top-level field \"" + key + "\"");
  }
  Model m;
  m.source = text;
  m.name = field<std::string>(j, "name", origin, "model");
  if (!j.contains("input")) throw Error(origin + ": missing field \"input\" (e.g. [1, 28, 28])");
  m.input = field<Shape>(j, "input", origin, {});
  if (m.input.empty() || std::any_of(m.input.begin(), m.input.end(), [](int64_t d) { return d < 1; })) {
    throw Error(origin + ": \"input\" must be a non-empty list of positive sizes");
  }
  // Checked here, so that the layers' products of input sizes (H * W, C * patch * patch), each at
  // most the whole count, cannot overflow. (The budget applies to the layers' outputs.)
  try {
    numel(m.input);
  } catch (const Error& e) {
    throw Error(origin + ": \"input\": " + e.what());
  }
  if (!j.contains("classes")) throw Error(origin + ": missing field \"classes\"");
  m.classes = static_cast<int>(int_field(j, "classes", origin, 2, kMaxClasses));
  try {
    m.nm = NM::parse(field<std::string>(j, "nm", origin, "dense"));
  } catch (const Error& e) {
    throw Error(origin + ": \"nm\": " + e.what());
  }
  if (nm_override) m.nm = *nm_override;
  if (j.contains("recipe")) m.recipe = parse_recipe(j["recipe"], origin);
  if (!j.contains("layers")) throw Error(origin + ": missing field \"layers\"");
  m.layers = make_layers(j["layers"], origin, "layers", m.nm);
  if (m.layers.empty()) throw Error(origin + ": \"layers\" is empty");
  try {
    m.build(m.recipe.seed);
  } catch (const Error& e) {
    throw Error(origin + ": " + e.what());
  }
  const Shape want = {m.classes};
  if (m.layers.back()->out_shape != want) {
    throw Error(origin + ": the last layer outputs " + shape_str(m.layers.back()->out_shape) +
                " per sample, but the model has " + std::to_string(m.classes) + " classes");
  }
  return m;
}

Model Model::load(const std::string& path, std::optional<NM> nm_override) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open model file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path, nm_override);
}

Shape build_sequence(std::vector<LayerPtr>& layers, const Shape& in, Rng& rng) {
  Shape s = in;
  for (auto& l : layers) {
    l->in_shape = s;
    s = l->build(s, rng);
    l->out_shape = s;
    const int64_t budget = activation_budget();
    if (sat::numel(s) > budget) {
      throw Error("layer " + l->name + " (" + l->type() + ") outputs " + shape_str(s) + " = " +
                  std::to_string(sat::numel(s)) + " elements per sample, over the budget of " + std::to_string(budget) +
                  " (SAT_MAX_ACTIVATION)");
    }
  }
  return s;
}

Tensor forward_sequence(std::vector<LayerPtr>& layers, const Tensor& x, const StepContext& ctx) {
  if (layers.empty()) return x;
  Tensor h = layers.front()->forward(x, ctx);
  for (size_t i = 1; i < layers.size(); ++i) h = layers[i]->forward(h, ctx);
  return h;
}

Tensor backward_sequence(std::vector<LayerPtr>& layers, const Tensor& dy, const StepContext& ctx) {
  if (layers.empty()) return dy;
  Tensor g = layers.back()->backward(dy, ctx);
  for (size_t i = layers.size() - 1; i-- > 0;) g = layers[i]->backward(g, ctx);
  return g;
}

void Model::build(uint64_t seed) {
  Rng rng(seed);
  build_sequence(layers, input, rng);
  const int64_t total = num_params(), budget = parameter_budget();
  if (total > budget) {
    throw Error("model " + name + " has " + std::to_string(total) + " parameters, over the budget of " +
                std::to_string(budget) + " (SAT_MAX_PARAMETERS)");
  }
}

std::vector<Param*> Model::params() {
  std::vector<Param*> out;
  for (auto& l : layers) l->params(out);
  return out;
}

std::vector<SparseWeight*> Model::sparse_weights() {
  std::vector<SparseWeight*> out;
  for (auto& l : layers) l->sparse_weights(out);
  return out;
}

std::vector<LayerInfo> Model::describe(Method method) const {
  std::vector<LayerInfo> out;
  for (const auto& l : layers) l->describe(out, method);
  if (layers.front()->skips_input_grad()) out.front().flops_bp = 0;   // see Model::backward
  return out;
}

int64_t Model::num_params() const {
  int64_t n = 0;
  for (const auto& info : describe(Method::dense)) n += info.params;
  return n;
}

Tensor Model::forward(const Tensor& x, const StepContext& ctx) {
  return forward_sequence(layers, x, ctx);
}

void Model::backward(const Tensor& dlogits, const StepContext& ctx) {
  // Nothing consumes the gradient of the input data, so the first layer may skip its BP product.
  Tensor g = dlogits;
  for (size_t i = layers.size(); i-- > 0;) {
    StepContext c = ctx;
    c.input_grad = i > 0;
    g = layers[i]->backward(g, c);
  }
}

void Model::zero_grad() {
  for (Param* p : params()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
}

void Model::regenerate(Method method) {
  for (auto* sw : sparse_weights()) sw->regenerate(method);
}

float softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels, Tensor* dlogits,
                            int* correct) {
  if (logits.rank() != 2) throw Error("loss: logits must be [batch, classes], got " + shape_str(logits.shape()));
  const int64_t b = logits.dim(0), c = logits.dim(1);
  if (static_cast<int64_t>(labels.size()) != b) {
    throw Error("loss: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(b));
  }
  const std::vector<float> z = logits.to_f32();
  std::vector<float> grad(dlogits ? z.size() : 0);
  double loss = 0;
  int right = 0;
  for (int64_t i = 0; i < b; ++i) {
    const float* row = &z[i * c];
    const int y = labels[i];
    if (y < 0 || y >= c) throw Error("loss: label " + std::to_string(y) + " out of range [0, " + std::to_string(c) + ")");
    const float mx = *std::max_element(row, row + c);
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    loss += std::log(sum) - (row[y] - mx);
    right += (std::max_element(row, row + c) - row) == y;
    if (dlogits) {
      for (int64_t j = 0; j < c; ++j) {
        const double p = std::exp(static_cast<double>(row[j] - mx)) / sum;
        grad[i * c + j] = static_cast<float>((p - (j == y ? 1.0 : 0.0)) / static_cast<double>(b));
      }
    }
  }
  if (dlogits) *dlogits = Tensor::from_f32(logits.shape(), grad);
  if (correct) *correct = right;
  return static_cast<float>(loss / static_cast<double>(b));
}

}  // namespace sat
