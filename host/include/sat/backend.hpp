#pragma once
// A backend executes training steps and primitives. `cpu` is the reference; `hls` (C-simulation of
// the accelerator), `sim` (cycle-accurate SystemC) and `fpga` (XRT) are the AcceleratorBackend over
// their Device (sat/accelerator.hpp), `cuda` runs on a GPU. Backends register themselves through
// sat/backend_registry.hpp.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sat/device.hpp"
#include "sat/model.hpp"

namespace sat {

class Device;         // sat/device.hpp
class Communicator;   // sat/distributed.hpp

struct StepResult {
  float loss = 0;
  int correct = 0;
};

// The per-step hyper-parameters the update needs.
struct UpdateConfig {
  Method method = Method::bdwp;
  double lr = 0.05, momentum = 0.9, weight_decay = 5e-4, srste_lambda = 2e-4;
};

enum class GemmMode { ff, bp, wu };
GemmMode parse_gemm_mode(const std::string& s);   // throws sat::Error naming the text

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Makes the model's weight forms current for `method` (pre-generation) and takes the host
  // model's state as the current one. Call it again after changing the model's parameters on the
  // host (loading a checkpoint, editing weights).
  virtual void prepare(Model& model, Method method) = 0;
  // One training step: FF, loss, BP, WU, SGD/SR-STE update, pre-generation.
  virtual StepResult train_step(Model& model, const Tensor& x, const std::vector<int>& y,
                                const UpdateConfig& cfg) = 0;
  // The batch the next train_step will receive, announced before the current one: a backend whose
  // device runs asynchronously writes it to the device while the current step runs. x and y stay
  // valid until the next train_step returns. A hint only: the next train_step is given its batch
  // anyway, and one that differs from the hint is written then. Default: nothing.
  virtual void prefetch(const Tensor& x, const std::vector<int>& y) {
    (void)x;
    (void)y;
  }
  // The step in two halves, for data-parallel training (sat/distributed.hpp), which sums the
  // ranks' gradients between them. cpu and cuda split their step; the others say so in the error
  // these defaults throw.
  virtual bool splits_step() const { return false; }
  // FF, loss, BP and WU of a batch: every trainable Param's grad holds the FP32 gradient of the
  // batch's mean loss; nothing is updated.
  virtual StepResult forward_backward(Model& model, const Tensor& x, const std::vector<int>& y,
                                      Method method);
  // The SGD/SR-STE update from the Params' grads, then pre-generation: train_step's second half.
  virtual void apply_update(Model& model, const UpdateConfig& cfg);
  // Data-parallel training with the gradients summed where they are, on the backend's device
  // (cuda: NCCL on the GPU buffers), instead of through the host Params: sets it up over `comm`
  // and returns what it runs on ("NCCL 2.28.9 on the GPUs' buffers"), or returns "" (the
  // default: the host path). Once set up, forward_backward leaves the gradients on the device,
  // reduce_gradients sums them and takes the non-trainable state from rank 0, and apply_update
  // reads them there.
  virtual std::string reduce_on_device(Communicator& comm) { return ""; }
  // Called before each forward_backward (and before a rank with an empty shard skips it) once
  // reduce_on_device is set up: a backend that overlaps the all-reduce with BP (cuda: NCCL,
  // bucket by bucket, sat/distributed.hpp's BucketSettings) starts summing each bucket, weighted
  // by `weight`, as soon as BP has finished it; reduce_gradients then completes the sum.
  virtual void begin_gradient_reduction(float weight, const std::string& what) {}
  virtual void reduce_gradients(float weight, const std::string& what);
  // Inference on a batch: loss and correct count, no state change.
  virtual StepResult evaluate(Model& model, const Tensor& x, const std::vector<int>& y,
                              Method method) = 0;
  // The explicit sync point: a backend that keeps the model's state on its device (the accelerator
  // devices) copies parameters, momentum and weight forms back into the host model. The training
  // loop calls it before a checkpoint and at the end; call it before reading the model on the host
  // (an evaluation on another backend, a mask comparison). Backends that train the host model in
  // place do nothing.
  virtual void sync(Model& model) {}
  // The GEMM primitive of `sat op gemm` (shapes in the CLI contract, docs/user-guide.md).
  // a, b are FP32 row-major; they are rounded to BF16 on entry (masks chosen before rounding).
  virtual std::vector<float> gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                                  const std::vector<float>& b, Shape b_shape, Shape* c_shape) = 0;
  // The device counters of the last run (train_step, evaluate or gemm) of a backend whose device
  // keeps them (sim: cycles, MACs, DRAM bytes, busy and stall per unit); empty otherwise.
  virtual std::optional<DeviceCounters> last_counters() const { return std::nullopt; }
};

// Opens a backend by name ("cpu", ...). Throws sat::Error naming the backend and what is missing
// when it is unknown or not built into this binary.
std::unique_ptr<Backend> open_backend(const std::string& name);
// The Device of an accelerator backend (hls, sim, fpga): what `sat replay` runs a trace on. Throws
// sat::Error naming the backend when it is unknown, not built, or runs no instruction stream.
std::unique_ptr<Device> open_device(const std::string& name);
// Every backend name with whether this binary has it: {"cpu", "available: <summary>"} or
// {"sim", "not built: needs ..."}.
std::vector<std::pair<std::string, std::string>> backend_status();

// Threads of the CPU backend's own kernels (OpenMP) and of OpenBLAS together; 0 = all cores.
void set_cpu_threads(int threads);

// SGD with momentum and weight decay plus the SR-STE term on pruned weights (DESIGN §3), applied
// to every trainable parameter of the model, then pre-generation. Shared by host-side backends.
void sgd_update(Model& model, const UpdateConfig& cfg);

}  // namespace sat
