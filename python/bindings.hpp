#pragma once
// What the files of the Python module share: the argument conversions and one bind_* function
// per file, called by sat_module.cpp in dependency order (classes before the functions that take
// them).
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "sat/backend.hpp"
#include "sat/model.hpp"
#include "sat/tensor.hpp"

// A Model owns its layers through unique_ptrs: it moves but does not copy, which pybind11's trait
// cannot see through the vector (whose copy constructor exists for any element type).
template <>
struct pybind11::detail::is_copy_constructible<sat::Model> : std::false_type {};

namespace sat::py_module {

namespace py = pybind11;

// An array argument as the library takes it: FP32 values in C order with their shape.
struct F32Array {
  Shape shape;
  std::vector<float> data;
};

// Converts an array-like argument (any real dtype, any memory order, nested lists) to float32 in
// C order, as `sat op` converts .npy files on load. Raises TypeError naming `func` and `arg` for
// anything that is not an array of real numbers, and ValueError when `ndim` >= 0 and the array
// has another number of dimensions.
F32Array f32_arg(py::handle obj, const std::string& func, const std::string& arg, int ndim = -1);

// A float32 NumPy array of `shape` holding a copy of `data` (numel(shape) values).
py::array_t<float> to_numpy(const Shape& shape, const float* data);
inline py::array_t<float> to_numpy(const Shape& shape, const std::vector<float>& data) {
  return to_numpy(shape, data.data());
}

py::tuple shape_tuple(const Shape& s);
// A per-sample shape argument (a sequence of positive ints); ValueError naming `func` and `arg`.
Shape shape_arg(py::handle obj, const std::string& func, const std::string& arg);

// The JSON value as Python objects (dict, list, float, ...), through the json module.
py::object json_to_py(const nlohmann::json& j);

// A `backend` argument: a name ("cpu", "sim", ...) opens a fresh backend, kept in `owned`; a
// sat.Backend is used as it is (its device and state carry over between calls).
Backend& backend_arg(py::handle obj, std::unique_ptr<Backend>& owned);

void bind_backends(py::module_& m);   // sat_module.cpp
void bind_ops(py::module_& m);        // ops.cpp
void bind_model(py::module_& m);      // model.cpp
void bind_train(py::module_& m);      // train.cpp

}  // namespace sat::py_module
