#include "sat/layer.hpp"

#include <cerrno>
#include <cstdlib>

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

namespace {
int64_t budget_from_env(const char* var, int64_t fallback) {
  const char* v = std::getenv(var);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long long b = std::strtoll(v, &end, 10);
  if (*end != '\0' || errno == ERANGE || b < 1) {
    throw Error(std::string(var) + " must be a positive integer (elements), got '" + v + "'");
  }
  return b;
}
}  // namespace

int64_t parameter_budget() { return budget_from_env("SAT_MAX_PARAMETERS", int64_t{1} << 28); }
int64_t activation_budget() { return budget_from_env("SAT_MAX_ACTIVATION", int64_t{1} << 26); }

Param::Param(std::string n, Shape s, bool train, bool wd)
    : name(std::move(n)), shape(std::move(s)), trainable(train), decay(wd) {
  const int64_t elements = sat::numel(shape);
  const int64_t budget = parameter_budget();
  if (elements > budget) {   // before the three arrays are allocated
    throw Error("parameter " + name + " " + shape_str(shape) + " has " + std::to_string(elements) +
                " elements, over the budget of " + std::to_string(budget) + " (SAT_MAX_PARAMETERS)");
  }
  const auto count = static_cast<size_t>(elements);
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
