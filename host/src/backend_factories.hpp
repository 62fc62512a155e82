#pragma once
// Constructors of the concrete backends, called only by the registry (host/registry/). Each optional
// backend lives in the library of its own subsystem (kernels/ for cuda, hls/ for hls) and is linked
// into `sat_backends` only where that subsystem is built.
#include <memory>

#include "sat/backend.hpp"

namespace sat {

std::unique_ptr<Backend> make_cpu_backend();
std::unique_ptr<Backend> make_hls_backend();    // defined where SAT_HAVE_HLS
std::unique_ptr<Backend> make_cuda_backend();   // defined where SAT_HAVE_CUDA

}  // namespace sat
