#pragma once
// Checked reads of JSON values for the parsers of model files, checkpoints and traces.
//
// nlohmann's get<T>() converts any JSON number to any arithmetic T with a plain cast: get<int>() of
// 1e30 or get<uint64_t>() of -1.5 is undefined behaviour (a float-to-integer conversion out of
// range), and get<int>() of 2^40 silently wraps. A file is untrusted input, so an integer field
// must hold a JSON integer that T represents; anything else is refused, and the caller names the
// file and the field.
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace sat::json_field {

template <typename T>
struct is_vector : std::false_type {};
template <typename U>
struct is_vector<std::vector<U>> : std::true_type {};

// `v` as T into `out`: true when `v` has T's JSON type and, for an integer T, its value fits in T.
// On false `out` may hold part of a list.
template <typename T>
bool read(const nlohmann::json& v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return false;
    out = v.get<bool>();
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    using L = std::numeric_limits<T>;
    if (v.is_number_unsigned()) {   // non-negative integers parse as unsigned
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(L::max())) return false;
      out = static_cast<T>(u);
      return true;
    }
    if (v.is_number_integer()) {    // negative
      const int64_t i = v.get<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        return false;
      } else {
        if (i < static_cast<int64_t>(L::min())) return false;
        out = static_cast<T>(i);
        return true;
      }
    }
    return false;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return false;
    out = v.get<T>();
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return false;
    out = v.get<std::string>();
    return true;
  } else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) return false;
    out.clear();
    out.reserve(v.size());
    for (const auto& e : v) {
      typename T::value_type x{};
      if (!read(e, x)) return false;
      out.push_back(std::move(x));
    }
    return true;
  } else {
    static_assert(!sizeof(T), "json_field::read: unsupported type");
  }
}

}  // namespace sat::json_field
