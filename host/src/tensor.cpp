#include "sat/tensor.hpp"

#include <cstdint>

#include <algorithm>

#include "sat/error.hpp"

namespace sat {

namespace {
Numerics g_numerics = Numerics::bf16;
}

Numerics numerics() { return g_numerics; }
float round_storage(float f) { return g_numerics == Numerics::bf16 ? round_bf16(f) : f; }
NumericsScope::NumericsScope(Numerics n) : saved_(g_numerics) { g_numerics = n; }
NumericsScope::~NumericsScope() { g_numerics = saved_; }

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    // A product past 63 bits (a model file's absurd size) is an error, not a wrapped count.
    if (d < 0 || (d > 0 && n > INT64_MAX / d)) throw Error("shape " + shape_str(s) + " has too many elements");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Tensor::Tensor(Shape shape)
    : Tensor(std::move(shape), numerics() == Numerics::bf16 ? DType::bf16 : DType::f32) {}

Tensor::Tensor(Shape shape, DType dtype) : Tensor(std::move(shape), dtype, Uninit{}) {
  if (dtype_ == DType::bf16) std::fill(half_.begin(), half_.end(), bf16{});
  else std::fill(full_.begin(), full_.end(), 0.0f);
}

Tensor::Tensor(Shape shape, DType dtype, Uninit) : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_) {
    if (d < 0) throw Error("tensor shape " + shape_str(shape_) + " has a negative dimension");
  }
  numel_ = sat::numel(shape_);
  if (dtype_ == DType::bf16) half_.resize(static_cast<size_t>(numel_));
  else full_.resize(static_cast<size_t>(numel_));
}

Tensor Tensor::uninitialized(Shape shape, DType dtype) {
  return Tensor(std::move(shape), dtype, Uninit{});
}

Tensor Tensor::from_f32(Shape shape, const float* values) {
  Tensor t(std::move(shape), numerics() == Numerics::bf16 ? DType::bf16 : DType::f32, Uninit{});
  t.assign_f32(values);
  return t;
}

Tensor Tensor::from_f32(Shape shape, const std::vector<float>& values) {
  if (static_cast<int64_t>(values.size()) != sat::numel(shape)) {
    throw Error("tensor shape " + shape_str(shape) + " needs " + std::to_string(sat::numel(shape)) +
                " values, got " + std::to_string(values.size()));
  }
  return from_f32(std::move(shape), values.data());
}

std::vector<float> Tensor::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel_));
  to_f32(out.data());
  return out;
}

void Tensor::to_f32(float* out) const {
  if (dtype_ == DType::bf16) sat::to_f32(half_.data(), out, half_.size());
  else std::copy(full_.begin(), full_.end(), out);
}

void Tensor::assign_f32(const float* values) {
  if (dtype_ == DType::bf16) to_bf16(values, half_.data(), half_.size());
  else std::copy(values, values + numel_, full_.begin());
}

bf16* Tensor::bf16_data() {
  if (dtype_ != DType::bf16) throw Error("tensor " + shape_str(shape_) + " is not BF16");
  return half_.data();
}
const bf16* Tensor::bf16_data() const { return const_cast<Tensor*>(this)->bf16_data(); }
float* Tensor::f32_data() {
  if (dtype_ != DType::f32) throw Error("tensor " + shape_str(shape_) + " is not FP32");
  return full_.data();
}
const float* Tensor::f32_data() const { return const_cast<Tensor*>(this)->f32_data(); }

Tensor Tensor::reshaped(Shape shape) const& {
  Tensor copy = *this;
  return std::move(copy).reshaped(std::move(shape));
}

Tensor Tensor::reshaped(Shape shape) && {
  if (sat::numel(shape) != numel_) {
    throw Error("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  }
  shape_ = std::move(shape);
  return std::move(*this);
}

}  // namespace sat
