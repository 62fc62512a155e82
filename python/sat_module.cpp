// The Python module `sat` (docs/python.md): the library's primitives, models, training,
// evaluation and checkpoints over NumPy arrays. The bindings are split by subject (ops.cpp,
// model.cpp, train.cpp); this file defines the module, its exception and the backends.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "sat/device.hpp"
#include "sat/error.hpp"

namespace sat::py_module {

void bind_backends(py::module_& m) {
  py::class_<Backend, std::unique_ptr<Backend>>(m, "Backend", R"doc(
An open backend. Keep one to reuse its device across calls (its state carries over); functions
that take backend="name" open a fresh one for the call.)doc")
      .def(py::init([](const std::string& name) { return open_backend(name); }), py::arg("name"),
           "Opens backend `name` (see sat.backends()); raises sat.Error when it is not built here.")
      .def_property_readonly("name", &Backend::name)
      .def("last_counters",
           [](const Backend& b) -> py::object {
             const auto c = b.last_counters();
             if (!c) return py::none();
             return py::module_::import("json").attr("loads")(counters_json(*c));
           },
           "The device counters of the last run as a dict (docs/sim.md's report keys): all of them "
           "from sim, the kernel's own counters from hls and fpga (its 'source' says which); None "
           "for backends without an accelerator device.")
      .def("__repr__", [](const Backend& b) { return "<sat.Backend '" + b.name() + "'>"; });

  m.def("backends", &backend_status,
        "Every backend with its status in this build: a list of (name, status) pairs, the status "
        "starting with 'available' or 'not built'.");
  m.def("available_backends", [] {
    std::vector<std::string> names;
    for (const auto& [name, status] : backend_status()) {
      if (status.rfind("available", 0) == 0) names.push_back(name);
    }
    return names;
  }, "The names of the backends this build can open.");
  m.def("set_threads", &set_cpu_threads, py::arg("threads"),
        "Threads of the CPU backend's kernels and of OpenBLAS (0 = all cores), as `--threads`.");
}

}  // namespace sat::py_module

PYBIND11_MODULE(sat, m) {
  namespace sp = sat::py_module;
  m.doc() = "SAT: training with N:M structured sparse weights (BDWP) on the cpu, hls, sim and cuda "
            "backends. docs/python.md";
  m.attr("__version__") = SAT_VERSION;
  // sat::Error carries the library's message (file, field, flag) verbatim; a subclass of
  // RuntimeError so that callers who only know the built-in classes still catch it.
  pybind11::register_exception<sat::Error>(m, "Error", PyExc_RuntimeError);
  sp::bind_backends(m);
  sp::bind_model(m);
  sp::bind_ops(m);
  sp::bind_train(m);
}
