// Argument conversions shared by the module's files (bindings.hpp).
#include <cstring>

#include <nlohmann/json.hpp>

#include "bindings.hpp"

namespace sat::py_module {

namespace {

std::string py_repr_shape(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

}  // namespace

F32Array f32_arg(py::handle obj, const std::string& func, const std::string& arg, int ndim) {
  const std::string who = func + ": argument '" + arg + "'";
  py::array a = py::array::ensure(obj);
  if (!a) {
    throw py::type_error(who + " must be an array of real numbers, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  // Float and integer dtypes convert to float32 as the .npy reader converts them; bool, complex,
  // strings and objects have no meaning here and are refused rather than guessed at.
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u') {
    throw py::type_error(who + " must hold real numbers (a float or integer dtype), got dtype " +
                         std::string(py::str(a.dtype())));
  }
  if (ndim >= 0 && a.ndim() != ndim) {
    throw py::value_error(who + " must be " + std::to_string(ndim) + "-D, got a " +
                          std::to_string(a.ndim()) + "-D array of shape " + py_repr_shape(a));
  }
  auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!f) throw py::type_error(who + " cannot be converted to float32");
  F32Array out;
  for (py::ssize_t i = 0; i < f.ndim(); ++i) out.shape.push_back(f.shape(i));
  out.data.assign(f.data(), f.data() + f.size());
  return out;
}

py::array_t<float> to_numpy(const Shape& shape, const float* data) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<float> a(dims);
  if (a.size() > 0) std::memcpy(a.mutable_data(), data, static_cast<size_t>(a.size()) * sizeof(float));
  return a;
}

py::tuple shape_tuple(const Shape& s) {
  py::tuple t(s.size());
  for (size_t i = 0; i < s.size(); ++i) t[i] = py::int_(s[i]);
  return t;
}

Shape shape_arg(py::handle obj, const std::string& func, const std::string& arg) {
  const std::string who = func + ": argument '" + arg + "'";
  if (py::isinstance<py::str>(obj) || !py::isinstance<py::sequence>(obj)) {
    throw py::type_error(who + " must be a sequence of positive ints, e.g. (1, 28, 28)");
  }
  Shape s;
  for (py::handle v : obj) {
    if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v) || v.cast<long long>() < 1) {
      throw py::value_error(who + " must be a sequence of positive ints, got " + std::string(py::repr(obj)));
    }
    s.push_back(v.cast<int64_t>());
  }
  if (s.empty()) throw py::value_error(who + " is empty");
  return s;
}

py::object json_to_py(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

Backend& backend_arg(py::handle obj, std::unique_ptr<Backend>& owned) {
  if (py::isinstance<py::str>(obj)) {
    owned = open_backend(obj.cast<std::string>());
    return *owned;
  }
  try {
    return obj.cast<Backend&>();
  } catch (const py::cast_error&) {
    throw py::type_error("argument 'backend' must be a backend name (str) or a sat.Backend, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
}

}  // namespace sat::py_module
