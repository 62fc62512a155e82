// sat compile: the offline scheduler's instruction stream and memory map for a model.
#include <climits>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "dataflow_flags.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/compiler.hpp"
#include "sat/model.hpp"
#include "sat/arch/config.hpp"
#include "sat/trace.hpp"

namespace sat::cli {

namespace {

CommandSpec compile_spec() {
  CommandSpec c("compile", "--model NAME|PATH [flags]",
                "Compiles one training step (FF, loss, BP, WU, update, pre-generation of every layer) into\n"
                "the accelerator's instruction stream and DRAM memory map, and prints the per-layer summary\n"
                "(instructions, bytes moved, MACs), the totals and the memory map per DDR channel.");
  c.value("model", "NAME|PATH", "model description (models/NAME.json or a path)")
      .value("nm", "N:M", "N:M sparsity (overrides the model file; 'dense' = no pruning)")
      .value("method", "M", "bdwp (default), srste or dense")
      .value("batch", "B", "batch size, 1 to 65535 (default: the model's recipe)")
      .flag("inference", "the inference stream (FF and loss only, no gradients)")
      .flag("update-apart", "the data-parallel program: the step stream stops after WU, and the update and "
                            "pre-generation form a stream of their own (docs/distributed.md)");
  add_dataflow_switches(c);
  c.flag("dump", "also print the whole stream, disassembled, grouped by layer, and every region of the memory map")
      .flag("json", "print the summary, the memory map (and with --dump the stream) as JSON on stdout "
                    "(docs/formats.md, \"sat compile --json\")")
      .value("emit", "FILE", "also write a trace file: the stream, the memory map, the initial DDR contents and "
                             "the results of a run on the reference device; `sat replay FILE` runs it on any device")
      .value("reference", "DEVICE", "the device whose run the trace records (default hls)")
      .value("seed", "S", "seed of the trace's synthetic batch (default 1)")
      .note("docs/dataflow.md explains the stream and what each switch does; docs/formats.md the trace.");
  return c;
}

nlohmann::json program_json(const Model& model, const Program& p, bool with_stream) {
  const ScheduleOptions& o = p.options;
  nlohmann::json j = {{"model", model.name},
                      {"nm", model.nm.str()},
                      {"method", method_name(o.method)},
                      {"batch", o.batch},
                      {"training", o.training},
                      {"options",
                       {{"interleave_mapping", o.interleave_mapping}, {"pregeneration", o.pregeneration},
                        {"offline_scheduling", o.offline_scheduling}, {"transposed_conv_bp", o.transposed_conv_bp},
                        {"phase_bp", o.phase_bp}, {"overlap_update", o.overlap_update},
                        {"balanced_k_tiles", o.balanced_k_tiles}, {"patch_reuse", o.patch_reuse},
                        {"fuse_relu", o.fuse_relu}, {"fused_pregen", o.fused_pregen},
                        {"update_apart", o.update_apart}}},
                      {"instructions", p.insns.size()},
                      {"prologue_instructions", p.prologue.size()},
                      {"update_instructions", p.update.size()}};
  int64_t loaded = 0, stored = 0;
  double macs = 0;
  j["layers"] = nlohmann::json::array();
  for (const LayerSchedule& l : p.layers) {
    j["layers"].push_back({{"name", l.name}, {"type", l.type}, {"phase", l.phase},
                           {"instructions", l.instructions}, {"bytes_loaded", l.bytes_loaded},
                           {"bytes_stored", l.bytes_stored}, {"macs", l.macs}, {"first_insn", l.first_insn}});
    loaded += l.bytes_loaded, stored += l.bytes_stored, macs += l.macs;
  }
  j["total"] = {{"instructions", p.insns.size()}, {"bytes_loaded", loaded}, {"bytes_stored", stored}, {"macs", macs}};
  nlohmann::json channels = nlohmann::json::array(), regions = nlohmann::json::array();
  for (uint32_t c = 0; c < arch::kDdrChannels; ++c) channels.push_back({{"channel", c}, {"bytes", p.map.channel_bytes[c]}});
  for (const Region& r : p.map.regions) {
    regions.push_back({{"name", r.name}, {"kind", region_kind_name(r.kind)}, {"channel", r.channel},
                       {"offset", r.offset}, {"bytes", r.bytes}, {"written", r.written}});
  }
  j["memory_map"] = {{"channels", channels}, {"regions", regions}};
  if (with_stream) {
    nlohmann::json stream = nlohmann::json::array(), update = nlohmann::json::array();
    for (const isa::Insn& in : p.insns) stream.push_back(disassemble(in));
    j["stream"] = stream;
    if (!p.update.empty()) {
      for (const isa::Insn& in : p.update) update.push_back(disassemble(in));
      j["update_stream"] = update;
    }
  }
  return j;
}

nlohmann::json emit_trace(const std::string& path, Model& model, const ScheduleOptions& opt,
                          const std::string& reference, uint64_t seed, bool quiet) {
  std::unique_ptr<Device> dev = open_device(reference);
  const Trace t = make_program_trace(model, opt, *dev, seed);
  write_trace(path, t);
  int64_t written = 0;
  for (const TraceRegion& tr : t.regions) written += tr.region.written ? 1 : 0;
  if (!quiet) {
    std::printf("trace %s: %s, %zu instructions, %zu regions (%lld written by the run), reference run on %s: ok\n",
                path.c_str(), t.description.c_str(), t.insns.size(), t.regions.size(), static_cast<long long>(written),
                t.reference.c_str());
  }
  return {{"path", path}, {"description", t.description}, {"instructions", t.insns.size()},
          {"regions", t.regions.size()}, {"regions_written", written}, {"reference", t.reference}};
}

}  // namespace

int cmd_compile(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = compile_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  ScheduleOptions opt;
  opt.method = method_flag(args, "bdwp");
  Model model = Model::load(resolve_model_path(args.str("model")), nm_opt(args));
  opt.batch = static_cast<int>(args.integer("batch", model.recipe.batch, 1, 0xffff));
  opt.training = !args.flag("inference");
  opt.update_apart = args.flag("update-apart");
  if (opt.update_apart && !opt.training) args.fail("--update-apart needs a training program (drop --inference)");
  if (opt.update_apart && args.has("emit")) {
    args.fail("--emit records the whole step's stream; --update-apart splits it (use one or the other)");
  }
  apply_dataflow_switches(args, opt);

  if (args.has("reference") && !args.has("emit")) args.fail("--reference needs --emit FILE");
  if (args.has("seed") && !args.has("emit")) args.fail("--seed needs --emit FILE");
  const long long seed = args.integer("seed", 1, 0, LLONG_MAX);
  const bool json = args.flag("json");
  if (args.has("emit")) model.regenerate(opt.method);   // the weight forms the trace starts from
  const Program p = compile(model, opt);
  nlohmann::json j;
  if (json) {
    j = program_json(model, p, args.flag("dump"));
  } else {
    std::printf("model %s, N:M %s\n", model.name.c_str(), model.nm.str().c_str());
    if (args.flag("dump")) {
      std::fputs(dump_program(p).c_str(), stdout);
    } else {
      std::fputs(program_summary(p).c_str(), stdout);
      std::fputs("\n", stdout);
      std::fputs(memory_map_summary(p).c_str(), stdout);
    }
  }
  if (auto path = args.opt("emit")) {
    j["trace"] = emit_trace(*path, model, opt, args.str("reference", "hls"), static_cast<uint64_t>(seed), json);
  }
  if (json) std::printf("%s\n", j.dump(2).c_str());
  return kExitOk;
}

}  // namespace sat::cli
