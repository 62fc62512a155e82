#pragma once
// Activations and gradients, row-major, batch first. Storage is BF16 (16-bit, rounded to nearest
// even; DESIGN §4). Layers compute in FP32 scratch and round when they store.
//
// Gradient checks need exact arithmetic, so a process-wide numerics mode exists: under
// `Numerics::fp32` (tests only, through NumericsScope) new tensors store FP32 and the weight forms
// the products read are not rounded. Training always runs in `Numerics::bf16`.
#include <cstdint>
#include <string>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "sat/bf16.hpp"

namespace sat {

using Shape = std::vector<int64_t>;
int64_t numel(const Shape& s);
std::string shape_str(const Shape& s);   // "[128, 32, 28, 28]"

enum class Numerics { bf16, fp32 };
Numerics numerics();
// Rounds to BF16 in Numerics::bf16, returns f unchanged in Numerics::fp32.
float round_storage(float f);

// Sets the numerics mode for its lifetime (not thread-safe: for tests).
class NumericsScope {
 public:
  explicit NumericsScope(Numerics n);
  ~NumericsScope();
  NumericsScope(const NumericsScope&) = delete;
  NumericsScope& operator=(const NumericsScope&) = delete;

 private:
  Numerics saved_;
};

enum class DType { bf16, f32 };

namespace detail {
// Leaves new elements of trivial types uninitialised (std::allocator value-initialises, which
// zero-fills): a tensor whose producer writes every element is not cleared first.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
}  // namespace detail

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled; dtype BF16 unless the numerics mode is FP32.
  explicit Tensor(Shape shape);
  Tensor(Shape shape, DType dtype);

  // Contents unspecified: for producers that write every element before anything reads one.
  static Tensor uninitialized(Shape shape, DType dtype);
  static Tensor from_f32(Shape shape, const float* values);   // rounds RNE when BF16
  static Tensor from_f32(Shape shape, const std::vector<float>& values);
  std::vector<float> to_f32() const;
  void to_f32(float* out) const;
  void assign_f32(const float* values);  // same shape; rounds RNE when BF16

  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }

  // Raw storage of the matching dtype; throws sat::Error for the other one.
  bf16* bf16_data();
  const bf16* bf16_data() const;
  float* f32_data();
  const float* f32_data() const;

  // Same data, another shape with the same element count. Throws sat::Error otherwise.
  Tensor reshaped(Shape shape) const&;
  Tensor reshaped(Shape shape) &&;

 private:
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::bf16;
  struct Uninit {};
  Tensor(Shape shape, DType dtype, Uninit);
  std::vector<bf16, detail::DefaultInitAllocator<bf16>> half_;
  std::vector<float, detail::DefaultInitAllocator<float>> full_;
};

}  // namespace sat
