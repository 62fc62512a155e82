#include <algorithm>

#include <nlohmann/json.hpp>

#include "sat/error.hpp"
#include "sat/model.hpp"
#include "sat/ops.hpp"

namespace sat {

namespace {

Shape batched(int64_t batch, const Shape& per_sample) {
  Shape s{batch};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

}  // namespace

LayerOp::LayerOp(const nlohmann::json& spec, const std::string& origin, const Shape& input_shape, NM nm)
    : input_shape_(input_shape) {
  layer_ = make_layer(LayerSpec{spec, origin, "op", nm});
  layer_->name = "op";
  Rng rng(1);
  layer_->in_shape = input_shape;
  layer_->out_shape = layer_->build(input_shape, rng);
  layer_->params(params_);
  layer_->sparse_weights(sparse_);
}

Shape LayerOp::output_shape(int64_t batch) const { return batched(batch, layer_->out_shape); }

std::string LayerOp::key(const Param& p) const {
  const std::string prefix = layer_->name + ".";
  return p.name.rfind(prefix, 0) == 0 ? p.name.substr(prefix.size()) : p.name;
}

Param* LayerOp::find(const std::string& k) const {
  for (Param* p : params_) {
    if (key(*p) == k) return p;
  }
  return nullptr;
}

void LayerOp::check_shapes(const Shape& x, const Shape& dy, const std::string& x_what,
                           const std::string& dy_what) const {
  const int64_t batch = x.empty() ? 0 : x[0];
  if (batch < 1 || x != batched(batch, input_shape_)) {
    throw Error(x_what + " is " + shape_str(x) + ", expected [B, " + shape_str(input_shape_).substr(1));
  }
  if (dy != output_shape(batch)) {
    throw Error(dy_what + " is " + shape_str(dy) + ", but the layer's output is " + shape_str(output_shape(batch)));
  }
}

std::vector<std::string> LayerOp::dense_notes(Method method) const {
  std::vector<std::string> notes;
  if (method == Method::dense) return notes;
  for (const SparseWeight* sw : sparse_) {
    if (!sw->dense_reason.empty()) {
      notes.push_back(sw->weight->name + ": N:M does not apply (" + sw->dense_reason + "); it runs dense");
    }
  }
  return notes;
}

void LayerOp::run(Method method, const Tensor& x, const Tensor& dy, Tensor& y, Tensor& dx) {
  check_shapes(x.shape(), dy.shape(), "X", "DY");
  for (SparseWeight* sw : sparse_) sw->regenerate(method);
  for (Param* p : params_) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  const StepContext ctx{method, true};
  y = layer_->forward(x, ctx);
  dx = layer_->backward(dy, ctx);
}

}  // namespace sat
