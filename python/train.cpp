// Data sources, training with a per-step Python callback, and evaluation.
#include <atomic>
#include <cmath>
#include <memory>
#include <optional>

#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "sat/data.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"
#include "sat/train.hpp"

namespace sat::py_module {

namespace {

// A data source shared between Python objects: DataSource.limit() wraps the one it limits without
// taking it from its Python owner, which make_prefix_source (it takes a unique_ptr) would.
class SharedSource : public BatchSource {
 public:
  explicit SharedSource(std::shared_ptr<const BatchSource> s) : s_(std::move(s)) {}
  int64_t size() const override { return s_->size(); }
  int classes() const override { return s_->classes(); }
  Shape sample_shape() const override { return s_->sample_shape(); }
  void batch(const int64_t* indices, int64_t n, Tensor& x, std::vector<int>& y) const override {
    s_->batch(indices, n, x, y);
  }

 private:
  std::shared_ptr<const BatchSource> s_;
};

// Samples held in memory, given as NumPy arrays: the inputs become BF16 as the image sources'
// do (Tensor::from_f32 rounds in training numerics).
class ArraySource : public BatchSource {
 public:
  ArraySource(F32Array x, std::vector<int> y, int classes)
      : x_(std::move(x)), y_(std::move(y)), classes_(classes) {
    sample_.assign(x_.shape.begin() + 1, x_.shape.end());
    sample_numel_ = numel(sample_);
  }
  int64_t size() const override { return static_cast<int64_t>(y_.size()); }
  int classes() const override { return classes_; }
  Shape sample_shape() const override { return sample_; }
  void batch(const int64_t* indices, int64_t n, Tensor& x, std::vector<int>& y) const override {
    std::vector<float> values(static_cast<size_t>(n * sample_numel_));
    y.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = indices[i];
      if (j < 0 || j >= size()) {
        throw Error("array data: sample index " + std::to_string(j) + " is outside [0, " +
                    std::to_string(size()) + ")");
      }
      std::copy_n(x_.data.begin() + j * sample_numel_, sample_numel_, values.begin() + i * sample_numel_);
      y[static_cast<size_t>(i)] = y_[static_cast<size_t>(j)];
    }
    Shape shape{n};
    shape.insert(shape.end(), sample_.begin(), sample_.end());
    x = Tensor::from_f32(shape, values);
  }

 private:
  F32Array x_;
  std::vector<int> y_;
  int classes_;
  Shape sample_;
  int64_t sample_numel_ = 0;
};

using SourcePtr = std::shared_ptr<BatchSource>;

SourcePtr array_source(py::handle x_obj, py::handle y_obj, int classes) {
  if (classes < 1) throw py::value_error("arrays: argument 'classes' must be >= 1");
  F32Array x = f32_arg(x_obj, "arrays", "x");
  if (x.shape.size() < 2) {
    throw py::value_error("arrays: argument 'x' must be [count, ...sample shape] (at least 2-D), got " +
                          shape_str(x.shape));
  }
  py::array ya = py::array::ensure(y_obj);
  if (!ya || (ya.dtype().kind() != 'i' && ya.dtype().kind() != 'u')) {
    throw py::type_error("arrays: argument 'y' must be an array of integer labels");
  }
  if (ya.ndim() != 1 || ya.shape(0) != x.shape[0]) {
    throw py::value_error("arrays: argument 'y' must be 1-D with one label per sample of 'x' (" +
                          std::to_string(x.shape[0]) + ")");
  }
  auto yi = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(ya);
  std::vector<int> y(static_cast<size_t>(yi.size()));
  for (py::ssize_t i = 0; i < yi.size(); ++i) {
    const int64_t v = yi.data()[i];
    if (v < 0 || v >= classes) {
      throw py::value_error("arrays: argument 'y': label " + std::to_string(v) + " at index " +
                            std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
    }
    y[static_cast<size_t>(i)] = static_cast<int>(v);
  }
  return std::make_shared<ArraySource>(std::move(x), std::move(y), classes);
}

SourcePtr limited(const SourcePtr& s, int64_t n) {
  if (n < 1) throw py::value_error("limit: argument 'n' must be >= 1");
  return make_prefix_source(std::make_unique<SharedSource>(s), n);
}

// The sources of `sat train --data KIND` (host/cli/run.cpp): Fashion-MNIST's splits, or synthetic
// samples (60,000 with seed 1 to train, 10,000 with seed 2 to test), limited as --train-limit and
// --test-limit (0: all).
py::tuple open_data(const Model& model, const std::string& kind, int64_t train_limit, int64_t test_limit,
                    const std::string& data_dir) {
  if (train_limit < 0 || test_limit < 0) throw py::value_error("open_data: limits must be >= 0 (0: all)");
  if (kind != "fashion-mnist" && kind != "synthetic") {
    throw py::value_error("open_data: argument 'kind' must be 'fashion-mnist' or 'synthetic', got '" + kind + "'");
  }
  DataSources sources = sat::open_data(kind, model.input, model.classes, data_dir);
  SourcePtr train = std::move(sources.train), test = std::move(sources.test);
  if (train_limit > 0) train = limited(train, train_limit);
  if (test_limit > 0) test = limited(test, test_limit);
  return py::make_tuple(train, test);
}

// The recipe overrides of train(), checked as `sat train` checks its flags.
struct Overrides {
  std::optional<int> epochs, batch;
  std::optional<double> lr, momentum, weight_decay, srste_lambda, warmup_epochs;
  std::optional<std::string> schedule;
  std::optional<uint64_t> seed;

  bool any_but_epochs() const {
    return batch || lr || momentum || weight_decay || srste_lambda || warmup_epochs || schedule || seed;
  }
  void apply(Recipe& r) const {
    if (epochs) r.epochs = *epochs;
    if (batch) r.batch = *batch;
    if (lr) r.lr = *lr;
    if (momentum) r.momentum = *momentum;
    if (weight_decay) r.weight_decay = *weight_decay;
    if (srste_lambda) r.srste_lambda = *srste_lambda;
    if (warmup_epochs) r.warmup_epochs = *warmup_epochs;
    if (schedule) r.schedule = *schedule;
    if (seed) r.seed = *seed;
    try {
      check_recipe(r, [](const std::string& field) { return "train: argument '" + field + "'"; });
    } catch (const Error& e) {
      throw py::value_error(e.what());
    }
  }
};

TrainState train_py(Model& model, const SourcePtr& train_data, const SourcePtr& test_data,
                    py::handle backend_obj, const std::optional<std::string>& method_text,
                    const std::optional<TrainState>& resume, const Overrides& ov, const std::string& out_dir,
                    int64_t checkpoint_every, int64_t stop_after_steps, py::object on_step, bool progress,
                    bool quiet) {
  if (!train_data) throw py::type_error("train: argument 'train_data' must be a sat.DataSource, not None");
  if (checkpoint_every < 0 || stop_after_steps < 0) {
    throw py::value_error("train: checkpoint_every and stop_after_steps must be >= 0");
  }
  if (!on_step.is_none() && !PyCallable_Check(on_step.ptr())) {
    throw py::type_error("train: argument 'on_step' must be callable (it receives a sat.StepReport)");
  }
  TrainState state;
  if (resume) {
    state = *resume;
    if (method_text && parse_method(*method_text) != state.method) {
      throw py::value_error("train: the state was trained with method " + std::string(method_name(state.method)) +
                            ", not " + *method_text);
    }
    // As `sat train --resume`: only the number of epochs may change; the rest is the run's.
    if (ov.any_but_epochs()) {
      throw py::value_error("train: a resumed run keeps its recipe; only 'epochs' may be given with 'state'");
    }
    if (ov.epochs) {
      if (*ov.epochs < 1) throw py::value_error("train: argument 'epochs' must be >= 1");
      state.recipe.epochs = *ov.epochs;
    }
  } else {
    state.method = parse_method(method_text.value_or("bdwp"));
    state.nm = model.nm;
    state.recipe = model.recipe;
    ov.apply(state.recipe);
    // As `sat train --seed`: another seed initialises the model anew with it.
    if (state.recipe.seed != model.recipe.seed) {
      model.recipe.seed = state.recipe.seed;
      model.build(state.recipe.seed);
    }
  }
  std::unique_ptr<Backend> owned;
  Backend& backend = backend_arg(backend_obj, owned);

  // The loop runs without the GIL; each step takes it back to call on_step and to look for a
  // pending signal (Ctrl-C), either of which stops the run as stop_after_steps does. An exception
  // raised there is kept and re-raised once train() has returned.
  std::optional<py::error_already_set> pending;
  TrainOptions opts;
  opts.out_dir = out_dir;
  opts.checkpoint_every = checkpoint_every;
  opts.stop_after_steps = stop_after_steps;
  opts.progress = progress;
  opts.quiet = quiet;
  const py::object* callback = on_step.is_none() ? nullptr : &on_step;
  opts.on_step = [&pending, callback](const StepReport& r) {
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (!callback) return true;
      const py::object result = (*callback)(r);
      // Only an explicit False stops: a callback that returns nothing continues.
      return !(py::isinstance<py::bool_>(result) && !result.cast<bool>());
    } catch (py::error_already_set& e) {
      pending.emplace(std::move(e));
      return false;
    }
  };
  TrainState done;
  {
    py::gil_scoped_release release;
    done = train(backend, model, *train_data, test_data.get(), state, opts);
  }
  if (pending) throw std::move(*pending);
  return done;
}

py::dict evaluate_py(Model& model, const SourcePtr& data, py::handle backend_obj, const std::string& method_text,
                     std::optional<int> batch) {
  if (!data) throw py::type_error("evaluate: argument 'data' must be a sat.DataSource, not None");
  const Method method = parse_method(method_text);
  const int b = batch.value_or(model.recipe.batch);
  if (b < 1) throw py::value_error("evaluate: argument 'batch' must be >= 1");
  std::unique_ptr<Backend> owned;
  Backend& backend = backend_arg(backend_obj, owned);
  EvalResult r;
  {
    py::gil_scoped_release release;
    backend.prepare(model, method);
    r = evaluate(backend, model, *data, method, b);
  }
  py::dict d;
  d["loss"] = r.loss;
  d["accuracy"] = r.accuracy;
  d["samples"] = r.samples;
  return d;
}

}  // namespace

void bind_train(py::module_& m) {
  py::class_<BatchSource, SourcePtr>(m, "DataSource", R"doc(
Samples and labels that training and evaluation read in batches (sat.synthetic, sat.fashion_mnist,
sat.arrays, sat.open_data).)doc")
      .def_property_readonly("size", &BatchSource::size)
      .def("__len__", &BatchSource::size)
      .def_property_readonly("classes", &BatchSource::classes)
      .def_property_readonly("sample_shape", [](const BatchSource& s) { return shape_tuple(s.sample_shape()); })
      .def("limit", &limited, py::arg("n"), "The first n samples (all of them when n >= size).")
      .def("batch", [](const BatchSource& s, const std::vector<int64_t>& indices) {
        Tensor x;
        std::vector<int> y;
        s.batch(indices.data(), static_cast<int64_t>(indices.size()), x, y);
        py::array_t<int32_t> labels(static_cast<py::ssize_t>(y.size()));
        std::copy(y.begin(), y.end(), labels.mutable_data());
        return py::make_tuple(to_numpy(x.shape(), x.to_f32()), labels);
      }, py::arg("indices"), "The samples at `indices` as the model sees them: (x float32, y int32).")
      .def("__repr__", [](const BatchSource& s) {
        return "<sat.DataSource " + std::to_string(s.size()) + " samples of " + shape_str(s.sample_shape()) +
               ", " + std::to_string(s.classes()) + " classes>";
      });

  m.def("synthetic", [](py::handle shape, int classes, int64_t count, uint64_t seed) -> SourcePtr {
    return make_synthetic_source(shape_arg(shape, "synthetic", "sample_shape"), classes, count, seed);
  }, py::arg("sample_shape"), py::arg("classes"), py::arg("count"), py::arg("seed") = 1,
     "count samples of standard-normal inputs and uniform labels, each a pure function of (seed, index).");
  m.def("fashion_mnist", [](py::handle shape, bool train, const std::string& dir) -> SourcePtr {
    const Shape s = shape_arg(shape, "fashion_mnist", "sample_shape");
    return make_image_source(std::make_shared<const Dataset>(load_fashion_mnist(train, dir)), s);
  }, py::arg("sample_shape"), py::arg("train") = true, py::arg("data_dir") = "", R"doc(
Fashion-MNIST's training (60,000) or test (10,000) split, shaped for a model's input (padding,
resizing and channels as docs/formats.md says). data_dir: default $SAT_DATA_DIR or
/usr/share/datasets/fashion-mnist.)doc");
  m.def("arrays", &array_source, py::arg("x"), py::arg("y"), py::arg("classes"), R"doc(
Samples given as arrays: x [count, ...sample shape] (converted to float32, BF16 in training) and
integer labels y [count] in [0, classes).)doc");
  m.def("open_data", &open_data, py::arg("model"), py::arg("kind") = "fashion-mnist", py::arg("train_limit") = 0,
        py::arg("test_limit") = 0, py::arg("data_dir") = "", R"doc(
The (train, test) sources `sat train --data KIND --train-limit N --test-limit N` uses for `model`:
kind "fashion-mnist" or "synthetic" (60,000 samples with seed 1, 10,000 with seed 2); 0: no limit.)doc");

  m.def("train", [](Model& model, const SourcePtr& train_data, const SourcePtr& test_data, py::handle backend,
                    const std::optional<std::string>& method, const std::optional<TrainState>& state,
                    std::optional<int> epochs, std::optional<int> batch, std::optional<double> lr,
                    std::optional<double> momentum, std::optional<double> weight_decay,
                    std::optional<double> srste_lambda, std::optional<std::string> schedule,
                    std::optional<double> warmup_epochs, std::optional<uint64_t> seed, const std::string& out_dir,
                    int64_t checkpoint_every, int64_t stop_after_steps, py::object on_step, bool progress,
                    bool quiet) {
    const Overrides ov{epochs, batch, lr, momentum, weight_decay, srste_lambda, warmup_epochs, schedule, seed};
    return train_py(model, train_data, test_data, backend, method, state, ov, out_dir, checkpoint_every,
                    stop_after_steps, std::move(on_step), progress, quiet);
  }, py::arg("model"), py::arg("train_data"), py::arg("test_data") = py::none(), py::kw_only(),
     py::arg("backend") = "cpu", py::arg("method") = py::none(), py::arg("state") = py::none(),
     py::arg("epochs") = py::none(), py::arg("batch") = py::none(), py::arg("lr") = py::none(),
     py::arg("momentum") = py::none(), py::arg("weight_decay") = py::none(),
     py::arg("srste_lambda") = py::none(), py::arg("schedule") = py::none(),
     py::arg("warmup_epochs") = py::none(), py::arg("seed") = py::none(), py::arg("out_dir") = "",
     py::arg("checkpoint_every") = 0, py::arg("stop_after_steps") = 0, py::arg("on_step") = py::none(),
     py::arg("progress") = false, py::arg("quiet") = true, R"doc(
Trains `model` in place, as `sat train`, and returns the final sat.TrainState.
  method: "bdwp" (default), "srste" or "dense"; the N:M is the model's (Model.load(nm=...)).
  epochs, batch, lr, momentum, weight_decay, srste_lambda, schedule, warmup_epochs, seed: override
    the model's recipe (a new seed re-initialises the model, as --seed).
  state: a TrainState (from train() or a checkpoint) to continue exactly; only epochs may change.
  out_dir: where metrics.csv, metrics.json, curves.svg and checkpoint.sat go ("" = nowhere).
  on_step(report): called after every step with a sat.StepReport; returning False stops the run
    (checkpointed when out_dir is set), as stop_after_steps does. An exception it raises stops the
    run and is raised again here.
The GIL is released while training; other Python threads run meanwhile.)doc");

  m.def("evaluate", &evaluate_py, py::arg("model"), py::arg("data"), py::kw_only(), py::arg("backend") = "cpu",
        py::arg("method") = "bdwp", py::arg("batch") = py::none(), R"doc(
Loss and accuracy in inference mode over every sample of `data`, as `sat eval`:
{"loss", "accuracy", "samples"}. method: the one the model was trained with (state.method);
batch: default the model's recipe batch.)doc");
}

}  // namespace sat::py_module
