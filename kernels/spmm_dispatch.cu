// sat::cuda::spmm: checks the operands and picks the kernel (Hopper's warpgroup sparse MMA, then the
// 2:4 sparse tensor cores through mma.sp, where the setting fits them; the general kernel otherwise).
#include <cstdlib>

#include "spmm_kernels.hpp"
#include "common.cuh"

namespace sat::cuda {

namespace {

// SAT_SPMM_KERNEL=sp24|general keeps `automatic` off the newer kernels (for comparisons); unset or
// anything else: the fastest that applies.
SpmmKernel env_cap() {
  static const SpmmKernel cap = [] {
    const char* e = std::getenv("SAT_SPMM_KERNEL");
    const std::string v = e ? e : "";
    return v == "sp24" ? SpmmKernel::sp24 : v == "general" ? SpmmKernel::general : SpmmKernel::automatic;
  }();
  return cap;
}

}  // namespace

const char* spmm_kernel_name(SpmmKernel k) {
  switch (k) {
    case SpmmKernel::automatic: return "automatic";
    case SpmmKernel::wgmma: return "wgmma";
    case SpmmKernel::sp24: return "sp24";
    case SpmmKernel::general: return "general";
  }
  return "?";
}

SpmmKernel spmm_choice(const DevNM& a, const uint16_t* in, int64_t ld_in) {
  const SpmmKernel cap = env_cap();
  if (cap == SpmmKernel::general || !a.sp24) return SpmmKernel::general;
  if (cap != SpmmKernel::sp24 && wgmma_unusable(a, in, ld_in).empty()) return SpmmKernel::wgmma;
  return SpmmKernel::sp24;
}

int64_t spmm_stat_blocks(int64_t cols) { return (cols + 127) / 128; }

int64_t spmm(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out, bool out_bf16,
             int64_t ld_out, SpmmKernel which, cudaStream_t stream, double* line_stats) {
  if (a.lines < 1 || a.len < 1 || !a.values) throw Error("spmm: the sparse operand was never generated");
  if (cols < 1) throw Error("spmm: no columns (P = " + std::to_string(cols) + ")");
  if (ld_in % 8 != 0 || ld_in < padded_len(a.len)) {
    throw Error("spmm: the input's leading dimension " + std::to_string(ld_in) +
                " must be a multiple of 8 and at least " + std::to_string(padded_len(a.len)) +
                " (the line length " + std::to_string(a.len) + " padded to " + std::to_string(kTileK) + ")");
  }
  if (ld_out < a.lines) throw Error("spmm: the output's leading dimension is below the line count");
  if (which == SpmmKernel::automatic) which = spmm_choice(a, in, ld_in);
  switch (which) {
    case SpmmKernel::wgmma: {
      const std::string why = wgmma_unusable(a, in, ld_in);
      if (!why.empty()) throw Error("spmm: the wgmma kernel cannot run this product: " + why);
      return launch_spmm_wgmma(a, in, ld_in, cols, out, out_bf16, ld_out, line_stats, stream);
    }
    case SpmmKernel::sp24:
      if (!a.sp24) throw Error("spmm: the 2:4 kernel needs the re-packed form, which " + a.nm.str() + " has not (N must be <= 2)");
      launch_spmm_sp24(a, in, ld_in, cols, out, out_bf16, ld_out, stream);
      break;
    default:
      launch_spmm_general(a, in, ld_in, cols, out, out_bf16, ld_out, stream);
  }
  return 0;
}

}  // namespace sat::cuda
