#include "sat/layer.hpp"

#include "sat/error.hpp"
#include "sat/tensor.hpp"

namespace sat {

const char* method_name(Method m) {
  switch (m) {
    case Method::dense: return "dense";
    case Method::srste: return "srste";
    case Method::bdwp: return "bdwp";
  }
  return "?";
}

Method parse_method(const std::string& s) {
  if (s == "dense") return Method::dense;
  if (s == "srste") return Method::srste;
  if (s == "bdwp") return Method::bdwp;
  throw Error("unknown training method '" + s + "' (expected dense, srste or bdwp)");
}

Param::Param(std::string n, Shape s, bool train, bool wd)
    : name(std::move(n)), shape(std::move(s)), trainable(train), decay(wd) {
  const auto count = static_cast<size_t>(sat::numel(shape));
  value.assign(count, 0.0f);
  grad.assign(count, 0.0f);
  momentum.assign(count, 0.0f);
}

void SparseWeight::regenerate(Method method) {
  const float* w = weight->value.data();
  if (!ff_sparse(method)) {
    dense.resize(weight->value.size());
    for (size_t i = 0; i < dense.size(); ++i) dense[i] = round_storage(w[i]);
    mask_f.clear();
    return;
  }
  fwd = nm_compress(w, cout, k, nm, Axis::K);
  mask_f = nm_mask_of(fwd);
  if (bp_sparse(method)) {
    bwd = nm_compress(w, cout, k, nm, Axis::Cout);
    dense.clear();
  } else {                                   // srste: BP is dense over W_F, not N:M along Cout
    dense.resize(weight->value.size());
    nm_decompress(fwd, dense.data());
  }
}

}  // namespace sat
