// sat sim: one training step (or inference pass) of a model on the cycle-accurate simulator, with
// the per-layer, per-pass report, plots, sweeps, ablations and the evaluation document
// (docs/sim.md "sat sim").
#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "sat/error.hpp"

#if SAT_HAVE_SIM
#include "sim_study.hpp"
#endif

namespace sat::cli {

namespace {

const char* kHelp =
    "usage: sat sim --model NAME|PATH [flags]\n"
    "       sat sim --resources [--config FILE] [--set K=V] [--out DIR]\n"
    "  Simulates one training step of the model on the cycle-accurate SystemC model of SAT and\n"
    "  writes, into --out, report.json (the step's `cycles` and every figure per layer and pass:\n"
    "  cycles, PE utilisation, MACs, DRAM bytes and bandwidth per channel, buffer traffic, stall\n"
    "  cycles by cause, energy; bounds and the critical path), layers.csv (the per-layer table),\n"
    "  cycles.svg (per-layer stacked bars of cycles by pass) and roofline.svg. docs/sim.md.\n"
    "  --model NAME|PATH     model description (models/NAME.json or a path)\n"
    "  --nm N:M              N:M sparsity (overrides the model file)\n"
    "  --method M            bdwp (default), srste or dense\n"
    "  --batch B             batch size (default: the model's recipe)\n"
    "  --inference           the inference pass (FF and loss) instead of a training step\n"
    "  --config FILE         JSON overrides of the accelerator configuration (docs/sim.md)\n"
    "  --set K=V[,K=V]       overrides on the command line: pe=RxC[xL], tile=RxCxK, clock=MHz,\n"
    "                        window=W, vector_lanes=L, conv_patch=E, vec_scratch=E,\n"
    "                        load_engines=N, fill_beats=B, queue=D, tokens=D, dram_queue=D\n"
    "  --out DIR             where the files go (default sim-out)\n"
    "  --sweep SPEC          one run per point of 'key=v1,v2;key=v1,v2' (keys: nm (N:M or dense),\n"
    "                        batch and the --set keys); writes sweep.json, sweep.csv, sweep.svg\n"
    "  --ablate              the step with each dataflow optimisation off in turn; writes\n"
    "                        ablation.json, ablation.csv, ablation.svg\n"
    "  --evaluate FILE       every model of the models directory, dense and BDWP at 2:8, 1:8, 2:4\n"
    "                        and 4:8, with ablations at 2:8: writes the evaluation document FILE\n"
    "                        (docs/evaluation.md) and each run's report under --out\n"
    "  --resources           no simulation: a first-order estimate of the FPGA resources of the\n"
    "                        configuration (--config, --set) per unit and buffer against the XCVU9P,\n"
    "                        with the verdict (DSP, BRAM, URAM each <= 80%); writes resources.json\n"
    "                        into --out when given (docs/resources.md)\n"
    "  --no-interleave, --no-pregen, --no-offline, --no-bp-conv, --no-phase-bp, --no-overlap-update,\n"
    "  --no-balanced-k, --no-patch-reuse, --no-fuse-relu, --no-fused-pregen\n"
    "                        a dataflow optimisation off (as sat compile)\n"
    "  --seed S              seed of the synthetic batch (default 1)\n"
    "  --quiet               no progress display\n";

}  // namespace

int cmd_sim(const std::vector<std::string>& argv) {
  if (!argv.empty() && argv[0] == "--help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  Args args("sim", argv, {"model", "nm", "method", "batch", "config", "set", "out", "sweep", "seed", "evaluate"},
            {"inference", "ablate", "no-interleave", "no-pregen", "no-offline", "no-bp-conv", "no-phase-bp", "no-overlap-update",
             "no-balanced-k", "no-patch-reuse", "no-fuse-relu",
             "no-fused-pregen", "quiet",
             "resources"});
#if SAT_HAVE_SIM
  return run_sim_command(args);
#else
  (void)args;
  throw Error("sat sim: this build has no simulator: the SystemC model (sim/) needs libsystemc-dev "
              "(scripts/install-deps.sh installs it; then reconfigure)");
#endif
}

}  // namespace sat::cli
