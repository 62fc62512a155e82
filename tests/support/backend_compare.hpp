#pragma once
// One harness for comparing any backend with the CPU reference: training steps from the same
// initial model and batches (masks exact, losses and parameters within a tolerance), and the gemm
// primitive. Every backend's suite (hls, cuda, and the conformance suite of the accelerator
// devices) goes through it, so all are held to the same checks.
#include <string>
#include <vector>

#include "random.hpp"
#include "sat/backend.hpp"
#include "sat/model.hpp"

namespace sat::test {

// A model file of models/ ("lenet5"), or JSON text ("{...}").
Model load_test_model(const std::string& model);

// What "agrees with the CPU" means for one comparison of training steps.
struct StepTolerance {
  double loss = 2e-2;        // |loss - cpu| <= loss * max(1, |cpu|)
  double param_max = 2e-2;   // per parameter: max |diff| <= param_max * max |cpu value|; < 0: off
  double update_norm = -1;   // per parameter: |step - cpu step| <= update_norm * |cpu step| + update_abs; < 0: off
  double update_abs = 1e-7;  // the absolute floor of that bound (steps that are rounding noise around zero)
  double update_cos = -1;    // per parameter: cosine(step, cpu step) >= update_cos; < 0: off
  double whole_update_cos = -1;    // over all trainable parameters together; < 0: off
  double whole_update_ratio = -1;  // | |step| / |cpu step| - 1 | <= this over all parameters; < 0: off
  bool masks_exact = true;   // W_F and W_B index sets equal after every step
  bool evaluate = false;     // also compare an evaluation of the updated models
};

// Trains `steps` steps of `model` on `backend` and on the CPU from the same initial weights and the
// same batches of `batch` samples (synthetic, or Fashion-MNIST's first images with `fashion`), and
// checks after every step (after Backend::sync) against `tol`.
void expect_training_matches_cpu(const std::string& backend, const std::string& model, Method method, int batch,
                                 int steps, const StepTolerance& tol, bool fashion = false);

// Two models trained the same way by two paths that must give the same bits (a split step, graph
// replay, a fusion): every parameter's value and momentum equal, and with `forms` every N:M form
// (W_F values and indices, W_B indices, the SR-STE mask). Call Backend::sync on both first.
void expect_same_state(Model& a, Model& b, bool forms = false);

// Backend::gemm against the CPU's: element i may differ by rel_tol * sum_k |a_ik * b_kj| (the FP32
// accumulation order differs, nothing else may); shapes must be equal.
void expect_gemm_matches_cpu(const std::string& backend, GemmMode mode, NM nm, int64_t batch, int64_t cout,
                             int64_t k, uint64_t seed, double rel_tol);

}  // namespace sat::test
