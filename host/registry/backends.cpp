// The backend registry: maps a backend name to the backend built into this binary, or to a clear
// error naming what is missing. It is a library of its own (`sat_backends`) so that the optional
// backends can depend on libsat without libsat depending on them.
#include <string>

#include "backend_factories.hpp"
#include "sat/error.hpp"

namespace sat {

namespace {

struct Entry {
  const char* name;
  std::unique_ptr<Backend> (*make)();   // null where not built
  const char* needs;                    // what building or running it requires
};

const Entry kBackends[] = {
    {"cpu", &make_cpu_backend, ""},
#ifdef SAT_HAVE_HLS
    {"hls", &make_hls_backend, ""},
#else
    {"hls", nullptr, "the HLS C-simulation of the accelerator (hls/), which this build left out"},
#endif
    {"sim", nullptr, "the SystemC cycle-accurate model (sim/), not built yet"},
#ifdef SAT_HAVE_CUDA
    {"cuda", &make_cuda_backend, ""},
#else
    {"cuda", nullptr, "the CUDA kernels (kernels/), which need nvcc at configure time"},
#endif
    {"fpga", nullptr, "the XRT driver (driver/) and a VCU1525/U200 with the SAT xclbin, not built yet"},
};

std::string available_names() {
  std::string out;
  for (const auto& e : kBackends) {
    if (!e.make) continue;
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

}  // namespace

std::unique_ptr<Backend> open_backend(const std::string& name) {
  std::string known;
  for (const auto& e : kBackends) {
    if (name == e.name) {
      if (e.make) return e.make();
      throw Error("backend '" + name + "' is not available in this build: it needs " + e.needs +
                  " (available: " + available_names() + ")");
    }
    known += known.empty() ? e.name : std::string(", ") + e.name;
  }
  throw Error("unknown backend '" + name + "' (known: " + known + ")");
}

std::vector<std::pair<std::string, std::string>> backend_status() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : kBackends) {
    out.emplace_back(e.name, e.make ? std::string("available")
                                    : std::string("not built: needs ") + e.needs);
  }
  return out;
}

}  // namespace sat
