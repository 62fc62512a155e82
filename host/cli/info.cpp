// sat info: what this build holds: its backends (and what a missing one needs), the accelerator
// configuration and the interface version of the contract it was built from.
#include <cstdio>

#include "args.hpp"
#include "commands.hpp"
#include "sat/arch/config.hpp"
#include "sat/arch/interface.hpp"
#include "sat/backend.hpp"
#include "sat/cpu_kernels.hpp"

namespace sat::cli {

int cmd_info(const std::vector<std::string>& argv) {
  const CommandSpec spec("info", "", "Prints this build's backends, the CPU kernels' SIMD path, the accelerator configuration and its interface version.");
  if (!spec.parse(argv)) return kExitOk;
  std::printf("accelerator contract (arch/): interface version 0x%08x\n", arch::kInterfaceVersion);
  std::printf("  PE array %dx%d, %d lanes per PE; N:M with M in {", arch::kPeRows, arch::kPeCols, arch::kPeLanes);
  for (int i = 0; i < arch::kNumSupportedM; ++i) std::printf("%s%d", i ? ", " : "", arch::kSupportedM[i]);
  std::printf("}; tiles %dx%dx%d; %d DDR channels; %d MHz; part %s\n", arch::kMaxTileRows, arch::kMaxTileCols,
              arch::kMaxTileK, arch::kDdrChannels, arch::kClockMHz, arch::kPart);
  // The SIMD path of the CPU kernels, chosen at run time (SAT_SIMD restricts it).
  std::printf("cpu kernels: SIMD path %s (this CPU runs: %s)\n", cpu::simd_path(), cpu::simd_paths_available());
  std::printf("cpu dense layers: oneDNN, ISA %s\n", cpu::dnnl_isa());
#ifdef SAT_HAVE_MPI
  std::printf("data-parallel training: MPI (Boost.MPI): mpirun -np N sat train ...\n");
#else
  std::printf("data-parallel training: not built (configure found no Boost.MPI; Debian: libboost-mpi-dev openmpi-bin)\n");
#endif
  std::printf("backends:\n");
  for (const auto& [name, status] : backend_status()) std::printf("  %-5s %s\n", name.c_str(), status.c_str());
  return 0;
}

}  // namespace sat::cli
