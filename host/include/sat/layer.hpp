#pragma once
// A layer of a model: shape inference, parameters, forward and backward on the CPU.
// Shapes passed to build() are per sample (no batch dimension); tensors carry the batch first.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sat/nm.hpp"
#include "sat/tensor.hpp"

namespace sat {

// Training method (DESIGN §3).
enum class Method { dense, srste, bdwp };
const char* method_name(Method m);
Method parse_method(const std::string& s);   // throws sat::Error naming the text

class ProductRouter;   // sat/product_router.hpp

struct StepContext {
  Method method = Method::bdwp;
  bool training = true;                      // false: inference (no caches, BN uses running stats)
  bool input_grad = true;                    // false: backward may skip dL/dx (the first layer's
                                             // input is data) and return an empty tensor
  ProductRouter* router = nullptr;           // a device backend's products (sat/product_router.hpp);
                                             // null: the weight layers compute them on the CPU
};

using Rng = std::mt19937_64;

// FP32 master tensor with its gradient and momentum. Non-trainable ones (BatchNorm running
// statistics) are saved in checkpoints but skipped by the optimizer.
// Budgets a model must keep, checked before anything of that size is allocated: elements of one
// parameter tensor and of all of a model's parameters (SAT_MAX_PARAMETERS, default 2^28), and
// elements of one layer's output per sample (SAT_MAX_ACTIVATION, default 2^26). The variables, when
// set, must be positive integers. Containers nest at most kMaxLayerNesting levels.
int64_t parameter_budget();
int64_t activation_budget();
inline constexpr int kMaxLayerNesting = 64;
inline constexpr int64_t kMaxClasses = int64_t{1} << 24;

struct Param {
  std::string name;                          // "conv1.weight", filled in by Model
  Shape shape;
  std::vector<float> value, grad, momentum;
  bool trainable = true;
  bool decay = true;                         // weight decay applies (weights, not biases/norms)

  Param() = default;
  Param(std::string n, Shape s, bool train = true, bool wd = true);
  int64_t numel() const { return static_cast<int64_t>(value.size()); }
};

// The N:M state of one Linear/Conv weight W[cout][k] (k = cin*kh*kw, flattened (cin, kh, kw)).
// Pre-generation (regenerate) derives both compressed forms from the FP32 master weights.
struct SparseWeight {
  Param* weight = nullptr;
  int64_t cout = 0, k = 0;
  NM nm{1, 1};                               // effective setting (dense when it cannot apply)
  std::string dense_reason;                  // why a requested N:M does not apply; empty otherwise
  NMCompressed fwd;                          // W_F: pruned along K   (FF in srste and bdwp)
  NMCompressed bwd;                          // W_B: pruned along Cout (BP in bdwp)
  std::vector<uint8_t> mask_f;               // keep-mask of W_F, for the SR-STE term
  std::vector<float> dense;                  // BF16-valued dense operand of the dense products:
                                             // W (dense), decompressed W_F (srste BP); else empty

  bool sparse() const { return !nm.dense(); }
  // Whether FF / BP run the N:M kernel under `method` (else they run dense on `dense`).
  bool ff_sparse(Method m) const { return sparse() && m != Method::dense; }
  bool bp_sparse(Method m) const { return sparse() && m == Method::bdwp; }
  // Pre-generation: rebuilds the forms `method` reads from weight->value. Called once per step
  // right after the update, and after initialisation or loading.
  void regenerate(Method method);
};

// One row of `sat summary`.
struct LayerInfo {
  std::string name, type;
  Shape in, out;                             // per sample
  double flops_ff = 0, flops_bp = 0, flops_wu = 0;   // per sample, at the effective sparsity
  int64_t params = 0;
  std::string sparsity = "-";                // "2:8 FF+BP", "dense (Cout 10 % 8 != 0)"; "-": no weights
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string type() const = 0;
  // Infers the output shape, allocates and initialises parameters. Throws sat::Error on a shape
  // the layer cannot take, naming the layer.
  virtual Shape build(const Shape& in, Rng& rng) = 0;
  // In training mode caches what backward needs.
  virtual Tensor forward(const Tensor& x, const StepContext& ctx) = 0;
  // Returns dL/dx and adds dL/dparam into each Param::grad.
  virtual Tensor backward(const Tensor& dy, const StepContext& ctx) = 0;

  // Whether backward honours StepContext::input_grad == false by skipping its BP product.
  virtual bool skips_input_grad() const { return false; }

  virtual void params(std::vector<Param*>& out) {}
  virtual void sparse_weights(std::vector<SparseWeight*>& out) {}
  // The layer's settings (stride, padding, heads, eps, ...) for the accelerator's scheduler, which
  // lowers each layer type to instructions; {} for layers without settings.
  virtual nlohmann::json attrs() const { return nlohmann::json::object(); }
  // The nested layer sequences of a container (residual: body, then shortcut); {} for plain layers.
  virtual std::vector<std::vector<std::unique_ptr<Layer>>*> branches() { return {}; }
  // Appends this layer's summary row(s) (containers append their children's).
  virtual void describe(std::vector<LayerInfo>& out, Method method) const = 0;

  std::string name;                          // its "name", else its path ("layers[5].body[0]")
  Shape in_shape, out_shape;                 // set by build()
};

using LayerPtr = std::unique_ptr<Layer>;

}  // namespace sat
