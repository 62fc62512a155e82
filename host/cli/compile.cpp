// sat compile: the offline scheduler's instruction stream and memory map for a model.
#include <cstdio>
#include <optional>

#include "args.hpp"
#include "commands.hpp"
#include "model_path.hpp"
#include "sat/backend.hpp"
#include "sat/compiler.hpp"
#include "sat/model.hpp"
#include "sat/trace.hpp"

namespace sat::cli {

namespace {

const char* kHelp =
    "usage: sat compile --model NAME|PATH [flags]\n"
    "  Compiles one training step (FF, loss, BP, WU, update, pre-generation of every layer) into\n"
    "  the accelerator's instruction stream and DRAM memory map, and prints the per-layer summary\n"
    "  (instructions, bytes moved, MACs), the totals and the memory map per DDR channel.\n"
    "  --model NAME|PATH     model description (models/NAME.json or a path)\n"
    "  --nm N:M              N:M sparsity (overrides the model file; 'dense' = no pruning)\n"
    "  --method M            bdwp (default), srste or dense\n"
    "  --batch B             batch size (default: the model's recipe)\n"
    "  --inference           the inference stream (FF and loss only, no gradients)\n"
    "  --no-interleave       all regions on DDR channel 0 (interleave mapping off)\n"
    "  --no-pregen           generate each weight form right before the product that reads it\n"
    "                        (pre-generation off)\n"
    "  --no-offline          every instruction waits for the one before it, single-buffered\n"
    "                        (offline scheduling off)\n"
    "  --no-bp-conv          BP of stride-1 convolutions as a product scattered back by col2im\n"
    "  --no-phase-bp         BP of stride-2 convolutions as a product scattered back by col2im,\n"
    "                        not as four phase convolutions of dY\n"
    "  --no-overlap-update   every update and pre-generation after the whole backward pass\n"
    "  --no-balanced-k       K tiles of the full size and a short rest instead of equal sizes\n"
    "  --no-patch-reuse      every LD_CONV reads its input patch, even the one the buffer holds\n"
    "  --no-fuse-relu        a ReLU after a BatchNorm as its own pass, not inside V_BN/V_BN_BWD\n"
    "  --no-fused-pregen     W_F and W_B each from its own read of the master (two PGENs)\n"
    "  --dump                also print the whole stream, disassembled, grouped by layer, and\n"
    "                        every region of the memory map\n"
    "  --emit FILE           also write a trace file: the stream, the memory map, the initial DDR\n"
    "                        contents (the model's initial parameters and weight forms, a\n"
    "                        synthetic batch, the recipe's hyper-parameters) and the results of a\n"
    "                        run on the reference device; `sat replay FILE` runs it on any device\n"
    "  --reference DEVICE    the device whose run the trace records (default hls)\n"
    "  --seed S              seed of the trace's synthetic batch (default 1)\n"
    "  docs/dataflow.md explains the stream and what each switch does; docs/formats.md the trace.\n";

void emit_trace(const std::string& path, Model& model, const ScheduleOptions& opt, const std::string& reference,
                uint64_t seed) {
  std::unique_ptr<Device> dev = open_device(reference);
  const Trace t = make_program_trace(model, opt, *dev, seed);
  write_trace(path, t);
  int64_t written = 0;
  for (const TraceRegion& tr : t.regions) written += tr.region.written ? 1 : 0;
  std::printf("trace %s: %s, %zu instructions, %zu regions (%lld written by the run), reference run on %s: ok\n",
              path.c_str(), t.description.c_str(), t.insns.size(), t.regions.size(), static_cast<long long>(written),
              t.reference.c_str());
}

}  // namespace

int cmd_compile(const std::vector<std::string>& argv) {
  if (!argv.empty() && argv[0] == "--help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  Args args("compile", argv, {"model", "nm", "method", "batch", "emit", "reference", "seed"},
            {"dump", "no-interleave", "no-pregen", "no-offline", "no-bp-conv", "no-phase-bp", "no-overlap-update", "no-balanced-k",
             "no-patch-reuse", "no-fuse-relu",
             "no-fused-pregen", "inference"});
  std::optional<NM> nm;
  if (auto s = args.opt("nm")) nm = NM::parse(*s);
  ScheduleOptions opt;
  opt.method = parse_method(args.str("method", "bdwp"));
  Model model = Model::load(resolve_model_path(args.str("model")), nm);
  const long long batch = args.integer("batch", model.recipe.batch);
  if (batch < 1) args.fail("--batch must be >= 1");
  if (batch > 0xffff) args.fail("--batch must be <= 65535");
  opt.batch = static_cast<int>(batch);
  opt.training = !args.flag("inference");
  opt.interleave_mapping = !args.flag("no-interleave");
  opt.pregeneration = !args.flag("no-pregen");
  opt.offline_scheduling = !args.flag("no-offline");
  opt.transposed_conv_bp = !args.flag("no-bp-conv");
  opt.phase_bp = !args.flag("no-phase-bp");
  opt.overlap_update = !args.flag("no-overlap-update");
  opt.balanced_k_tiles = !args.flag("no-balanced-k");
  opt.patch_reuse = !args.flag("no-patch-reuse");
  opt.fuse_relu = !args.flag("no-fuse-relu");
  opt.fused_pregen = !args.flag("no-fused-pregen");

  if (args.has("reference") && !args.has("emit")) args.fail("--reference needs --emit FILE");
  if (args.has("seed") && !args.has("emit")) args.fail("--seed needs --emit FILE");
  const long long seed = args.integer("seed", 1);
  if (seed < 0) args.fail("--seed must be >= 0");
  if (args.has("emit")) model.regenerate(opt.method);   // the weight forms the trace starts from
  const Program p = compile(model, opt);
  std::printf("model %s, N:M %s\n", model.name.c_str(), model.nm.str().c_str());
  if (args.flag("dump")) {
    std::fputs(dump_program(p).c_str(), stdout);
  } else {
    std::fputs(program_summary(p).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(memory_map_summary(p).c_str(), stdout);
  }
  if (auto path = args.opt("emit")) emit_trace(*path, model, opt, args.str("reference", "hls"), static_cast<uint64_t>(seed));
  return 0;
}

}  // namespace sat::cli
