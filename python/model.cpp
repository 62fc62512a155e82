// Models, their parameters and summary, the training state and checkpoints.
#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "sat/checkpoint.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"
#include "sat/train.hpp"

namespace sat::py_module {

namespace {

std::optional<NM> nm_opt(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return NM::parse(*text);
}

// The dict `sat summary --json` prints (host/cli/summary.cpp), with the same totals.
py::object summary(const Model& model, const std::string& method_text) {
  const Method method = parse_method(method_text);
  const auto rows = model.describe(method);
  const auto dense_rows = model.describe(Method::dense);
  double ff = 0, bp = 0, wu = 0, dff = 0, dbp = 0, dwu = 0;
  for (const auto& r : rows) ff += r.flops_ff, bp += r.flops_bp, wu += r.flops_wu;
  for (const auto& r : dense_rows) dff += r.flops_ff, dbp += r.flops_bp, dwu += r.flops_wu;
  nlohmann::json j = {{"model", model.name}, {"input", model.input}, {"classes", model.classes},
                      {"nm", model.nm.str()}, {"method", method_name(method)},
                      {"params", model.num_params()}};
  j["layers"] = nlohmann::json::array();
  for (const auto& r : rows) {
    j["layers"].push_back({{"name", r.name}, {"type", r.type}, {"in", r.in}, {"out", r.out},
                           {"params", r.params}, {"flops_ff", r.flops_ff}, {"flops_bp", r.flops_bp},
                           {"flops_wu", r.flops_wu}, {"sparsity", r.sparsity}});
  }
  j["total"] = {{"flops_ff", ff}, {"flops_bp", bp}, {"flops_wu", wu},
                {"dense_flops", dff + dbp + dwu},
                {"step_speedup_ceiling", (dff + dbp + dwu) / std::max(1.0, ff + bp + wu)}};
  return json_to_py(j);
}

Param& find_param(Model& model, const std::string& name) {
  std::string names;
  for (Param* p : model.params()) {
    if (p->name == name) return *p;
    names += " " + p->name;
  }
  throw py::key_error("model " + model.name + " has no parameter '" + name + "' (parameters:" + names + ")");
}

const std::vector<float>& param_field(const Param& p, const std::string& what) {
  if (what == "value") return p.value;
  if (what == "grad") return p.grad;
  if (what == "momentum") return p.momentum;
  throw py::value_error("argument 'what' must be 'value', 'grad' or 'momentum', got '" + what + "'");
}

py::dict metrics_dict(const EpochMetrics& m) {
  py::dict d;
  d["epoch"] = m.epoch;
  d["train_loss"] = m.train_loss;
  d["train_acc"] = m.train_acc;
  d["test_loss"] = m.test_loss;
  d["test_acc"] = m.test_acc;
  d["lr"] = m.lr;
  d["seconds"] = m.seconds;
  d["images_per_s"] = m.images_per_s;
  return d;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<Recipe>(m, "Recipe", "The training recipe of a model file (docs/model-format.md).")
      .def(py::init<>())
      .def_readwrite("epochs", &Recipe::epochs)
      .def_readwrite("batch", &Recipe::batch)
      .def_readwrite("lr", &Recipe::lr)
      .def_readwrite("momentum", &Recipe::momentum)
      .def_readwrite("weight_decay", &Recipe::weight_decay)
      .def_readwrite("srste_lambda", &Recipe::srste_lambda)
      .def_readwrite("schedule", &Recipe::schedule)
      .def_readwrite("step_every", &Recipe::step_every)
      .def_readwrite("step_gamma", &Recipe::step_gamma)
      .def_readwrite("warmup_epochs", &Recipe::warmup_epochs)
      .def_readwrite("seed", &Recipe::seed)
      .def("__repr__", [](const Recipe& r) {
        return "<sat.Recipe epochs=" + std::to_string(r.epochs) + " batch=" + std::to_string(r.batch) +
               " lr=" + std::to_string(r.lr) + " schedule=" + r.schedule + " seed=" + std::to_string(r.seed) + ">";
      });

  py::class_<StepReport>(m, "StepReport", "What one training step reports to train()'s on_step.")
      .def_readonly("epoch", &StepReport::epoch, "1-based")
      .def_readonly("step_in_epoch", &StepReport::step_in_epoch, "steps done of this epoch, this one included")
      .def_readonly("steps_per_epoch", &StepReport::steps_per_epoch)
      .def_readonly("global_step", &StepReport::global_step, "steps done in all, this one included")
      .def_readonly("loss", &StepReport::loss, "this step's mean loss")
      .def_readonly("correct", &StepReport::correct, "this step's correct predictions")
      .def_readonly("count", &StepReport::count, "this step's samples")
      .def_readonly("lr", &StepReport::lr, "the learning rate this step used")
      .def("__repr__", [](const StepReport& r) {
        return "<sat.StepReport epoch=" + std::to_string(r.epoch) + " step=" + std::to_string(r.step_in_epoch) +
               "/" + std::to_string(r.steps_per_epoch) + " loss=" + std::to_string(r.loss) + ">";
      });

  py::class_<TrainState>(m, "TrainState", R"doc(
Where a run stands: what train() returns and checkpoints hold. Pass it back to train(state=...)
to continue exactly where it stopped.)doc")
      .def_property_readonly("method", [](const TrainState& s) { return std::string(method_name(s.method)); })
      .def_property_readonly("nm", [](const TrainState& s) { return s.nm.str(); })
      .def_readwrite("recipe", &TrainState::recipe)
      .def_readonly("epoch", &TrainState::epoch, "epochs fully done")
      .def_readonly("step_in_epoch", &TrainState::step_in_epoch, "steps done of the next epoch")
      .def_readonly("global_step", &TrainState::global_step)
      .def_property_readonly("history", [](const TrainState& s) {
        py::list l;
        for (const auto& e : s.history) l.append(metrics_dict(e));
        return l;
      }, "one dict per finished epoch: epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, images_per_s")
      .def("__repr__", [](const TrainState& s) {
        return "<sat.TrainState " + std::string(method_name(s.method)) + " " + s.nm.str() + " epoch " +
               std::to_string(s.epoch) + "/" + std::to_string(s.recipe.epochs) + " step " +
               std::to_string(s.global_step) + ">";
      });

  py::class_<Model>(m, "Model", "A model: layers built from a JSON description (docs/model-format.md).")
      .def_static("load", [](const std::string& name_or_path, const std::optional<std::string>& nm) {
        return Model::load(resolve_model_path(name_or_path), nm_opt(nm));
      }, py::arg("name_or_path"), py::arg("nm") = py::none(), R"doc(
Loads a model file: a name of models/ ("lenet5"; $SAT_MODELS_DIR overrides the folder) or a path,
as `sat train --model`. nm ("2:8", "dense") overrides the file's N:M.)doc")
      .def_static("from_json", [](const std::string& text, const std::string& origin,
                                  const std::optional<std::string>& nm) {
        return Model::from_json_text(text, origin, nm_opt(nm));
      }, py::arg("text"), py::arg("origin") = "<json>", py::arg("nm") = py::none(),
         "Builds a model from its JSON text; errors name `origin`.")
      .def_readonly("name", &Model::name)
      .def_property_readonly("input", [](const Model& mo) { return shape_tuple(mo.input); },
                             "per-sample input shape")
      .def_readonly("classes", &Model::classes)
      .def_property_readonly("nm", [](const Model& mo) { return mo.nm.str(); })
      .def_readwrite("recipe", &Model::recipe)
      .def_readonly("source", &Model::source, "the JSON text it was built from")
      .def_property_readonly("num_params", &Model::num_params)
      .def("summary", &summary, py::arg("method") = "bdwp",
           "Per-layer shapes, parameters, FLOPs and sparsity: the dict `sat summary --json` prints.")
      .def("parameter_names", [](Model& mo) {
        std::vector<std::string> names;
        for (Param* p : mo.params()) names.push_back(p->name);
        return names;
      })
      .def("parameters", [](Model& mo, const std::string& what) {
        py::dict d;
        for (Param* p : mo.params()) d[p->name.c_str()] = to_numpy(p->shape, param_field(*p, what));
        return d;
      }, py::arg("what") = "value", R"doc(
Every parameter as a float32 array (a copy), by name in model order; what: "value" (the FP32
master), "grad" or "momentum".)doc")
      .def("parameter", [](Model& mo, const std::string& name, const std::string& what) {
        const Param& p = find_param(mo, name);
        return to_numpy(p.shape, param_field(p, what));
      }, py::arg("name"), py::arg("what") = "value")
      .def("set_parameter", [](Model& mo, const std::string& name, py::handle value) {
        Param& p = find_param(mo, name);
        F32Array v = f32_arg(value, "set_parameter", "value");
        if (v.shape != p.shape) {
          throw py::value_error("set_parameter: argument 'value' is " + shape_str(v.shape) + ", but parameter " +
                                name + " is " + shape_str(p.shape));
        }
        p.value = std::move(v.data);
      }, py::arg("name"), py::arg("value"), R"doc(
Replaces a parameter's FP32 master value (same shape). train() and evaluate() prepare their
backend from the host's parameters, so the change applies to the next call.)doc")
      .def("__repr__", [](const Model& mo) {
        return "<sat.Model " + mo.name + " input " + shape_str(mo.input) + ", " + std::to_string(mo.classes) +
               " classes, N:M " + mo.nm.str() + ">";
      });

  m.def("save_checkpoint", [](const std::string& path, Model& model, const TrainState& state) {
    save_checkpoint(path, model, state);
  }, py::arg("path"), py::arg("model"), py::arg("state"),
     "Writes the model's parameters and momentum with `state` (atomically; format SATCKPT1).");
  m.def("load_checkpoint", [](const std::string& path, Model& model) { return load_checkpoint(path, model); },
        py::arg("path"), py::arg("model"),
        "Loads a checkpoint into a model of the same parameters; returns its TrainState.");
  m.def("model_from_checkpoint", [](const std::string& path) {
    TrainState state;
    Model model = model_from_checkpoint(path, &state);
    return py::make_tuple(std::move(model), std::move(state));
  }, py::arg("path"), R"doc(
Rebuilds the checkpointed model from the file alone (its source, at the N:M it was trained with)
and loads it, as `sat eval --checkpoint`. Returns (model, state).)doc");
}

}  // namespace sat::py_module
