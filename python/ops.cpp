// The primitives of `sat op` (host/cli/op.cpp) on NumPy arrays: prune, gemm and layer. Each calls
// the library functions the CLI calls, with the CLI's checks, so that the module and `sat op`
// agree bit for bit (tests/python/test_ops.py).
#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "sat/error.hpp"
#include "sat/layer.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"
#include "sat/ops.hpp"

namespace sat::py_module {

namespace {

py::array_t<float> prune(py::handle w_obj, const std::string& nm_text, const std::string& axis_text) {
  const NM nm = NM::parse(nm_text);
  if (axis_text != "k" && axis_text != "cout") {
    throw py::value_error("prune: argument 'axis' must be 'k' or 'cout', got '" + axis_text + "'");
  }
  const Axis axis = axis_text == "k" ? Axis::K : Axis::Cout;
  const F32Array w = f32_arg(w_obj, "prune", "w", 2);
  // As `sat op prune`: a dense setting keeps every entry whatever the shape.
  if (nm.dense()) return to_numpy(w.shape, w.data);
  return to_numpy(w.shape, nm_prune(w.data.data(), w.shape[0], w.shape[1], nm, axis));
}

py::array_t<float> gemm(py::handle a_obj, py::handle b_obj, const std::string& mode_text,
                        const std::optional<std::string>& nm_text, py::handle backend_obj) {
  GemmMode mode;
  try {
    mode = parse_gemm_mode(mode_text);
  } catch (const Error& e) {
    throw py::value_error(std::string("gemm: argument 'mode': ") + e.what());
  }
  if (!nm_text && mode != GemmMode::wu) {
    throw py::value_error("gemm: argument 'nm' is required for mode " + mode_text + " (e.g. '2:8' or 'dense')");
  }
  const NM nm = NM::parse(nm_text.value_or("dense"));
  const F32Array a = f32_arg(a_obj, "gemm", "a", 2);
  const F32Array b = f32_arg(b_obj, "gemm", "b", 2);
  std::unique_ptr<Backend> owned;
  Backend& backend = backend_arg(backend_obj, owned);
  Shape c_shape;
  std::vector<float> c;
  {
    py::gil_scoped_release release;
    c = backend.gemm(mode, nm, a.data, a.shape, b.data, b.shape, &c_shape);
  }
  return to_numpy(c_shape, c);
}

// The layer's JSON: text, or a dict (dumped through the json module).
nlohmann::json layer_spec(py::handle spec) {
  std::string text;
  if (py::isinstance<py::str>(spec)) {
    text = spec.cast<std::string>();
  } else if (py::isinstance<py::dict>(spec)) {
    text = py::module_::import("json").attr("dumps")(spec).cast<std::string>();
  } else {
    throw py::type_error("layer: argument 'spec' must be JSON text or a dict, e.g. {'type': 'linear', 'out': 32}");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw py::value_error(std::string("layer: argument 'spec' is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw py::value_error("layer: argument 'spec': a layer is a JSON object with a \"type\"");
  return j;
}

// As `sat op layer`: one layer named "op", built with seed 1 or given parameters, forward in
// training mode on x, backward with dy.
py::dict layer(py::handle spec_obj, py::handle in_shape_obj, py::handle x_obj, py::handle dy_obj,
               const std::string& method_text, const std::string& nm_text, py::handle params_obj) {
  const nlohmann::json spec_json = layer_spec(spec_obj);
  const Shape in_shape = shape_arg(in_shape_obj, "layer", "input_shape");
  const Method method = parse_method(method_text);
  const NM nm = NM::parse(nm_text);
  const F32Array x = f32_arg(x_obj, "layer", "x");
  const F32Array dy = f32_arg(dy_obj, "layer", "dy");

  LayerOp op(spec_json, "spec", in_shape, nm);
  try {
    op.check_shapes(x.shape, dy.shape, "layer: argument 'x'", "layer: argument 'dy'");
  } catch (const Error& e) {
    throw py::value_error(e.what() + std::string(" (input_shape ") + shape_str(in_shape) + ")");
  }
  if (!params_obj.is_none()) {
    if (!py::isinstance<py::dict>(params_obj)) {
      throw py::type_error("layer: argument 'params' must be a dict of parameter name to array");
    }
    const py::dict given = params_obj.cast<py::dict>();
    for (auto item : given) {
      const std::string key = py::str(item.first);
      if (!op.find(key)) {
        std::string names;
        for (const Param* p : op.params()) names += " " + op.key(*p);
        throw py::value_error("layer: argument 'params': the layer has no parameter '" + key +
                              "' (parameters:" + names + ")");
      }
    }
    for (Param* p : op.params()) {
      const std::string key = op.key(*p);
      if (!given.contains(key)) {
        if (!p->trainable) continue;
        throw py::value_error("layer: argument 'params' lacks trainable parameter '" + key + "'");
      }
      F32Array v = f32_arg(given[key.c_str()], "layer", "params['" + key + "']");
      if (v.shape != p->shape) {
        throw py::value_error("layer: argument 'params['" + key + "']' is " + shape_str(v.shape) +
                              ", but parameter " + p->name + " is " + shape_str(p->shape));
      }
      p->value = std::move(v.data);
    }
  }
  // The CLI's note on stderr, as a Python warning: the layer runs, densely.
  for (const std::string& note : op.dense_notes(method)) py::module_::import("warnings").attr("warn")(note);
  Tensor y, dx;
  {
    py::gil_scoped_release release;
    op.run(method, Tensor::from_f32(x.shape, x.data), Tensor::from_f32(dy.shape, dy.data), y, dx);
  }
  py::dict out;
  out["y"] = to_numpy(y.shape(), y.to_f32());
  out["dx"] = to_numpy(dx.shape(), dx.to_f32());
  for (const Param* p : op.params()) {
    if (p->trainable) out[("grad_" + op.key(*p)).c_str()] = to_numpy(p->shape, p->grad);
  }
  return out;
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def("prune", &prune, py::arg("w"), py::arg("nm"), py::arg("axis") = "k", R"doc(
W [Cout][K] with the pruned entries set to zero, as `sat op prune`: in every group of M
consecutive entries along K (axis="k", the forward form) or Cout (axis="cout", the backward form)
the N largest |w| are kept, ties going to the lower index. Kept values are unchanged float32.
nm: "2:8", ..., or "dense" (keeps everything).)doc");
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("mode"), py::arg("nm") = py::none(),
        py::arg("backend") = "cpu", R"doc(
One product of a BDWP training step, as `sat op gemm`; W [Cout][K] is pruned N:M:
  ff: a = X  [B][K],    b = W [Cout][K]   -> X * prune_k(W)^T     [B][Cout]
  bp: a = dY [B][Cout], b = W [Cout][K]   -> dY * prune_cout(W)   [B][K]
  wu: a = dY [B][Cout], b = X [B][K]      -> dY^T * X             [Cout][K] (dense, nm ignored)
Inputs are rounded to BF16 (masks chosen on the float32 values first), accumulation is FP32.
backend: a name or a sat.Backend.)doc");
  m.def("layer", &layer, py::arg("spec"), py::arg("input_shape"), py::arg("x"), py::arg("dy"),
        py::arg("method") = "bdwp", py::arg("nm") = "2:8", py::arg("params") = py::none(), R"doc(
Forward (training mode) and backward of one layer, as `sat op layer`. spec: the layer's JSON (text
or dict, docs/model-format.md); input_shape: per sample; x [B, ...input_shape]; dy: the output's
shape. Parameters are initialised with seed 1 unless params gives them ({"weight": W, ...};
every trainable one). Returns {"y", "dx", "grad_<param>", ...} as float32 arrays.)doc");
}

}  // namespace sat::py_module
