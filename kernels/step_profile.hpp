#pragma once
// Where the `cuda` backend's training step spends its time, for SAT_CUDA_PROFILE=1: wall-clock
// totals per phase, the device synchronised at each phase boundary so that asynchronous work is
// charged to the phase that issued it (this slows the step a little; off by default, free then).
// The backend prints it to stderr when it goes away (report). The host layers' share is the step's time minus
// the phases measured here.
#include <cuda_runtime.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace sat::cuda {

class StepProfile {
 public:
  enum Phase { to_device, products, to_host, loss, update, kPhases };

  StepProfile() {
    const char* e = std::getenv("SAT_CUDA_PROFILE");
    on_ = e != nullptr && e[0] != '0';
  }
  StepProfile(const StepProfile&) = delete;
  StepProfile& operator=(const StepProfile&) = delete;
  bool on() const { return on_; }

  // The per-step split to stderr, when profiling is on and a training step ran; `what` names the run.
  void report(const char* what) const {
    if (!on_ || steps_ == 0) return;
    static const char* const kNames[kPhases] = {"activations and gradients to the GPU (copy + BF16 conversion or im2col)",
                                                "products (N:M kernels, cuBLAS)",
                                                "results to the host (transpose or col2im + copy)", "loss",
                                                "update + pre-generation + parameters back to the host"};
    // The GPU-resident step charges the same phases with other work (cuda_backend.cpp).
    static const char* const kResident[kPhases] = {"the batch to the GPU (pinned memory, asynchronous)",
                                                   "FF, loss, BP and WU of every layer on the GPU",
                                                   "waiting for the step's result (loss, flags)", "loss",
                                                   "update + pre-generation on the GPU"};
    const char* const* names = resident_ ? kResident : kNames;
    double device = 0;
    for (double v : ms_) device += v;
    std::fprintf(stderr, "cuda profile (SAT_CUDA_PROFILE, %s): %d training steps, %.1f ms per step\n", what, steps_,
                 step_ms_ / steps_);
    for (int i = 0; i < kPhases; ++i) {
      std::fprintf(stderr, "  %8.1f ms  %5.1f%%  %s\n", ms_[i] / steps_, 100.0 * ms_[i] / step_ms_, names[i]);
    }
    std::fprintf(stderr, resident_ ? "  %8.1f ms  %5.1f%%  host (the rest)\n"
                                   : "  %8.1f ms  %5.1f%%  host layers (the rest: element-wise layers, normalisation, pooling, ...)\n",
                 (step_ms_ - device) / steps_, 100.0 * (step_ms_ - device) / step_ms_);
  }

  // Charges the time from construction to destruction to one phase (or, with Phase kPhases, to the
  // whole training step). Phases count only inside a training step (not during evaluation).
  class Scope {
   public:
    Scope(StepProfile& p, Phase phase) : p_(p), phase_(phase), counts_(p.on_ && (phase == kPhases || p.in_step_)) {
      if (!counts_) return;
      if (phase_ == kPhases) p_.in_step_ = true;
      cudaDeviceSynchronize();
      t0_ = std::chrono::steady_clock::now();
    }
    ~Scope() {
      if (!counts_) return;
      cudaDeviceSynchronize();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
      if (phase_ == kPhases) {
        p_.step_ms_ += ms;
        ++p_.steps_;
        p_.in_step_ = false;
      } else {
        p_.ms_[phase_] += ms;
      }
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    StepProfile& p_;
    Phase phase_;
    bool counts_;
    std::chrono::steady_clock::time_point t0_;
  };

 private:
  bool on_ = false;
  bool in_step_ = false;
  bool resident_ = false;

 public:
  void set_resident(bool r) { resident_ = r; }

 private:
  std::array<double, kPhases> ms_{};
  double step_ms_ = 0;
  int steps_ = 0;
};

}  // namespace sat::cuda
