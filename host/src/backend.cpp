// The CPU backend (the reference every other backend is checked against).
#include "sat/backend.hpp"

#include <malloc.h>
#include <omp.h>

#include "sat/backend_registry.hpp"
#include "sat/distributed.hpp"
#include "sat/error.hpp"
#include "sat/ops.hpp"

namespace sat {

namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend() {
    // Every step allocates and frees the same large activation buffers. By default glibc maps
    // each one fresh and unmaps it on free, so every step page-faults and zeroes tens of MB; kept
    // in the heap they are reused instead.
    // (M_MMAP_THRESHOLD is capped at 32 MiB, below a CNN's largest buffers, so mmap is switched
    // off instead.)
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  std::string name() const override { return "cpu"; }

  void prepare(Model& model, Method method) override { model.regenerate(method); }

  StepResult train_step(Model& model, const Tensor& x, const std::vector<int>& y,
                        const UpdateConfig& cfg) override {
    const StepResult r = forward_backward(model, x, y, cfg.method);
    apply_update(model, cfg);
    return r;
  }

  bool splits_step() const override { return true; }

  StepResult forward_backward(Model& model, const Tensor& x, const std::vector<int>& y,
                              Method method) override {
    const StepContext ctx{method, true};
    model.zero_grad();
    const Tensor logits = model.forward(x, ctx);
    StepResult r;
    Tensor dlogits;
    r.loss = softmax_cross_entropy(logits, y, &dlogits, &r.correct);
    model.backward(dlogits, ctx);
    return r;
  }

  void apply_update(Model& model, const UpdateConfig& cfg) override { sgd_update(model, cfg); }

  StepResult evaluate(Model& model, const Tensor& x, const std::vector<int>& y,
                      Method method) override {
    const Tensor logits = model.forward(x, StepContext{method, false});
    StepResult r;
    r.loss = softmax_cross_entropy(logits, y, nullptr, &r.correct);
    return r;
  }

  std::vector<float> gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                          const std::vector<float>& b, Shape b_shape, Shape* c_shape) override {
    return cpu_gemm(mode, nm, a, std::move(a_shape), b, std::move(b_shape), c_shape);
  }
};

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace

StepResult Backend::forward_backward(Model&, const Tensor&, const std::vector<int>&, Method) {
  throw Error(cannot_split_message(name()));
}

void Backend::apply_update(Model&, const UpdateConfig&) { throw Error(cannot_split_message(name())); }

void Backend::reduce_gradients(float, const std::string&) {
  throw Error("backend '" + name() + "' sums no gradients on a device (reduce_on_device was not set up)");
}

void set_cpu_threads(int threads) {
  const int n = threads > 0 ? threads : omp_get_num_procs();
  omp_set_num_threads(n);   // oneDNN runs on the same OpenMP threads
}

}  // namespace sat

SAT_BACKEND(cpu, &sat::make_cpu_backend, "the CPU reference (oneDNN for dense products and convolutions, the N:M kernels of libsat)")
