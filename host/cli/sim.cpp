// sat sim: one training step (or inference pass) of a model on the cycle-accurate simulator, with
// the per-layer, per-pass report, plots, sweeps, ablations and the evaluation document
// (docs/sim.md "sat sim").
#include <cstdio>
#include <string>
#include <vector>

#include "args.hpp"
#include "dataflow_flags.hpp"
#include "commands.hpp"
#include "sat/error.hpp"

#if SAT_HAVE_SIM
#include "sim_study.hpp"
#endif

namespace sat::cli {

namespace {

CommandSpec sim_spec() {
  CommandSpec c("sim", "--model NAME|PATH [flags]\n       sat sim --resources [--config FILE] [--set K=V] [--out DIR]",
                "Simulates one training step of the model on the cycle-accurate SystemC model of SAT and\n"
                "writes, into --out, report.json (the step's `cycles` and every figure per layer and pass:\n"
                "cycles, PE utilisation, MACs, DRAM bytes and bandwidth per channel, buffer traffic, stall\n"
                "cycles by cause, energy; bounds and the critical path), layers.csv (the per-layer table),\n"
                "cycles.svg (per-layer stacked bars of cycles by pass) and roofline.svg. docs/sim.md.");
  c.value("model", "NAME|PATH", "model description (models/NAME.json or a path)")
      .value("nm", "N:M", "N:M sparsity (overrides the model file)")
      .value("method", "M", "bdwp (default), srste or dense")
      .value("batch", "B", "batch size (default: the model's recipe)")
      .flag("inference", "the inference pass (FF and loss) instead of a training step")
      .value("config", "FILE", "JSON overrides of the accelerator configuration (docs/sim.md)")
      .flag("rtl", "the GEMM unit computes on the Verilated RTL PE array (rtl/sat_pe_array.sv) inside the model, "
                   "cycle by cycle, instead of the C++ core model (gemm_core=rtl; the array's shape is fixed at "
                   "build time: set pe to it, e.g. --set pe=4x4; docs/rtl.md)")
      .value("set", "K=V[,K=V]", "overrides on the command line: pe=RxC[xL], tile=RxCxK, clock=MHz, window=W, "
                                 "vector_lanes=L, conv_patch=E, vec_scratch=E, load_engines=N, fill_beats=B, "
                                 "queue=D, tokens=D, dram_queue=D, gemm_core=model|rtl")
      .value("out", "DIR", "where the files go (default sim-out)")
      .value("sweep", "SPEC", "one run per point of 'key=v1,v2;key=v1,v2' (keys: nm (N:M or dense), batch and the "
                              "--set keys); writes sweep.json, sweep.csv, sweep.svg")
      .flag("ablate", "the step with each dataflow optimisation off in turn; writes ablation.json, ablation.csv, "
                      "ablation.svg")
      .value("evaluate", "FILE", "every model of the models directory, dense and BDWP at 2:8, 1:8, 2:4 and 4:8, "
                                 "with ablations at 2:8: writes the evaluation document FILE (docs/evaluation.md) "
                                 "and each run's report under --out")
      .flag("resources", "no simulation: a first-order estimate of the FPGA resources of the configuration "
                         "(--config, --set) per unit and buffer against the XCVU9P, with the verdict (DSP, BRAM, "
                         "URAM each <= 80%); writes resources.json into --out when given (docs/resources.md)");
  add_dataflow_switches(c);
  c.value("seed", "S", "seed of the synthetic batch (default 1)")
      .flag("quiet", "no progress display");
  return c;
}

}  // namespace

int cmd_sim(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = sim_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
#if SAT_HAVE_SIM
  return run_sim_command(args);
#else
  (void)args;
  throw Error("sat sim: this build has no simulator: the SystemC model (sim/) needs libsystemc-dev "
              "(scripts/install-deps.sh installs it; then reconfigure)");
#endif
}

}  // namespace sat::cli
