// Device discovery and the CUDA error messages.
#include <cstdio>
#include <cstring>
#include <string>

#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda {

void throw_cuda(const char* what, cudaError_t e, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw Error(std::string("CUDA error in ") + what + " (" + (base ? base + 1 : file) + ":" + std::to_string(line) +
              "): " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

int sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    SAT_CUDA_CHECK(cudaGetDevice(&dev));
    SAT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

std::string require_device(const std::string& who, int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    const char* missing = e == cudaErrorInsufficientDriver ? "the NVIDIA driver is missing or older than this CUDA runtime"
                          : e == cudaErrorNoDevice         ? "no CUDA device found"
                                                           : "no usable CUDA device";
    throw Error(who + ": " + missing + " (cudaGetDeviceCount: " + cudaGetErrorName(e) + ": " +
                cudaGetErrorString(e) + ")");
  }
  if (count == 0) throw Error(who + ": no CUDA device found (cudaGetDeviceCount returned 0 devices)");
  const int dev = device % count;
  SAT_CUDA_CHECK(cudaSetDevice(dev));
  cudaDeviceProp p{};
  SAT_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  if (p.major < 8) {
    throw Error(who + ": device " + std::to_string(dev) + " (" + p.name + ", compute capability " + std::to_string(p.major) + "." +
                std::to_string(p.minor) + ") lacks the BF16 and sparse tensor cores the kernels need (8.0 or newer)");
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s, compute capability %d.%d, %d multiprocessors, %.1f GiB", p.name, p.major, p.minor,
                p.multiProcessorCount, p.totalGlobalMem / 1073741824.0);
  return dev ? "device " + std::to_string(dev) + ": " + buf : std::string(buf);
}

}  // namespace sat::cuda
