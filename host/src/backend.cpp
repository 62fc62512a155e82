// The backend registry and the CPU backend (the reference every other backend is checked against).
#include "sat/backend.hpp"

#include <cblas.h>
#include <malloc.h>
#include <omp.h>

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
    const StepContext ctx{cfg.method, true};
    model.zero_grad();
    const Tensor logits = model.forward(x, ctx);
    StepResult r;
    Tensor dlogits;
    r.loss = softmax_cross_entropy(logits, y, &dlogits, &r.correct);
    model.backward(dlogits, ctx);
    sgd_update(model, cfg);
    return r;
  }

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

// Backends planned in DESIGN §1 and what each needs; listed so that asking for one gives a clear
// answer instead of "unknown".
struct Planned {
  const char* name;
  const char* needs;
};
constexpr Planned kPlanned[] = {
    {"hls", "the HLS C-simulation of the accelerator (hls/), not built yet"},
    {"sim", "the SystemC cycle-accurate model (sim/), not built yet"},
    {"cuda", "the CUDA kernels (kernels/) and a GPU, not built yet"},
    {"fpga", "the XRT driver (driver/) and a VCU1525/U200 with the SAT xclbin, not built yet"},
};

}  // namespace

std::unique_ptr<Backend> open_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  for (const auto& p : kPlanned) {
    if (name == p.name) {
      throw Error("backend '" + name + "' is not available in this build: it needs " + p.needs +
                  " (available: cpu)");
    }
  }
  throw Error("unknown backend '" + name + "' (known: cpu, hls, sim, cuda, fpga)");
}

void set_cpu_threads(int threads) {
  const int n = threads > 0 ? threads : omp_get_num_procs();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

std::vector<std::pair<std::string, std::string>> backend_status() {
  std::vector<std::pair<std::string, std::string>> out = {{"cpu", "available"}};
  for (const auto& p : kPlanned) out.emplace_back(p.name, std::string("not built: needs ") + p.needs);
  return out;
}

}  // namespace sat
