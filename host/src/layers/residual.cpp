// Residual: y = body(x) + shortcut(x), the shortcut being the identity unless given. A container:
// both branches are sequences of layers built from the description, so the same type serves ResNet
// basic blocks (conv-bn-relu-conv-bn, optional strided 1x1 conv + bn shortcut) and pre-norm
// transformer blocks (layernorm-attention, layernorm-linear-gelu-linear).
#include <nlohmann/json.hpp>

#include "layers/common.hpp"
#include "layers/layers.hpp"
#include "sat/error.hpp"

namespace sat::layers {

namespace {

using Branch = std::vector<LayerPtr>;

std::vector<float> add(const Tensor& a, const Tensor& b) {
  std::vector<float> s = a.to_f32();
  const std::vector<float> t = b.to_f32();
  for (size_t i = 0; i < s.size(); ++i) s[i] += t[i];
  return s;
}

class Residual final : public Layer {
 public:
  Residual(Branch body, Branch shortcut) : body_(std::move(body)), shortcut_(std::move(shortcut)) {}
  std::string type() const override { return "residual"; }
  std::vector<std::vector<LayerPtr>*> branches() override { return {&body_, &shortcut_}; }

  Shape build(const Shape& in, Rng& rng) override {
    const Shape body = build_sequence(body_, in, rng);
    const Shape shortcut = build_sequence(shortcut_, in, rng);
    if (body != shortcut) {
      throw Error(name + " (residual): body outputs " + shape_str(body) + " but " +
                  (shortcut_.empty() ? "the identity shortcut" : "shortcut") + " outputs " +
                  shape_str(shortcut) + " (input " + shape_str(in) + "); they must match");
    }
    return body;
  }

  Tensor forward(const Tensor& x, const StepContext& ctx) override {
    const Tensor yb = forward_sequence(body_, x, ctx);
    const Tensor ys = forward_sequence(shortcut_, x, ctx);
    return Tensor::from_f32(yb.shape(), add(yb, ys));
  }

  Tensor backward(const Tensor& dy, const StepContext& ctx) override {
    const Tensor db = backward_sequence(body_, dy, ctx);
    const Tensor ds = backward_sequence(shortcut_, dy, ctx);
    return Tensor::from_f32(db.shape(), add(db, ds));
  }

  void params(std::vector<Param*>& out) override {
    for (auto& l : body_) l->params(out);
    for (auto& l : shortcut_) l->params(out);
  }

  void sparse_weights(std::vector<SparseWeight*>& out) override {
    for (auto& l : body_) l->sparse_weights(out);
    for (auto& l : shortcut_) l->sparse_weights(out);
  }

  // The residual's own row (the add in FF, the sum of the branch gradients in BP) comes first, as
  // a header for its children's rows: body, then shortcut.
  void describe(std::vector<LayerInfo>& out, Method method) const override {
    out.push_back(layer_info(*this, static_cast<double>(sat::numel(out_shape)),
                             static_cast<double>(sat::numel(in_shape))));
    for (const auto& l : body_) l->describe(out, method);
    for (const auto& l : shortcut_) l->describe(out, method);
  }

 private:
  Branch body_, shortcut_;
};

}  // namespace

LayerPtr make_residual(const LayerSpec& spec) {
  spec.allow_only({"body", "shortcut"});
  if (!spec.has("body")) spec.fail("missing field \"body\" (an array of layers)");
  Branch body = make_layers(spec.json["body"], spec.origin, spec.path + ".body", spec.model_nm);
  if (body.empty()) spec.fail("\"body\" is empty");
  Branch shortcut;
  if (spec.has("shortcut")) {
    shortcut = make_layers(spec.json["shortcut"], spec.origin, spec.path + ".shortcut",
                           spec.model_nm);
  }
  return std::make_unique<Residual>(std::move(body), std::move(shortcut));
}

}  // namespace sat::layers
