#pragma once
// How a backend plugs into `open_backend` (sat/backend.hpp). A backend's folder defines its entry
// with SAT_BACKEND in one of its sources and declares itself to CMake with sat_backend()
// (cmake/Backends.cmake); the build generates the table of every backend of this binary from those
// declarations. A part that cannot be built here declares sat_backend_missing() instead, with what
// it needs, so that `sat info` and the error of open_backend say it. Step by step:
// docs/architecture.md, "Adding a backend".
#include <memory>

#include "sat/accelerator.hpp"
#include "sat/backend.hpp"
#include "sat/device.hpp"

namespace sat {

struct BackendEntry {
  const char* name;                            // what --backend takes
  std::unique_ptr<Backend> (*make)();          // throws sat::Error when it cannot open (no GPU, ...)
  const char* summary;                         // one line for `sat info`
  std::unique_ptr<Device> (*make_device)();    // an accelerator device (replays traces); else null
};

// The training backend of a device backend: the AcceleratorBackend over a fresh device.
template <std::unique_ptr<Device> (*MakeDevice)()>
std::unique_ptr<Backend> make_device_backend() {
  return make_accelerator_backend(MakeDevice());
}

}  // namespace sat

// Defines the entry of backend `name` (an identifier: cpu, cuda, ...) made by `make`.
#define SAT_BACKEND(name, make, summary) \
  ::sat::BackendEntry sat_backend_entry_##name() { return {#name, make, summary, nullptr}; }

// Defines the entry of an accelerator device: backend `name` is the AcceleratorBackend over the
// Device `make_device` returns, and `sat replay --backend name` runs traces on that device.
#define SAT_DEVICE_BACKEND(name, make_device, summary)                                          \
  ::sat::BackendEntry sat_backend_entry_##name() {                                             \
    return {#name, &::sat::make_device_backend<make_device>, summary, make_device};            \
  }
