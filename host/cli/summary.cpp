// sat summary: per-layer shapes, FLOPs per pass, parameters and sparsity of a model.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "sat/model.hpp"

namespace sat::cli {

namespace {

CommandSpec summary_spec() {
  CommandSpec c("summary", "--model NAME|PATH [flags]",
                "Prints every layer's input and output shape (per sample), parameters, the FLOPs of its\n"
                "forward (FF), backward-data (BP) and weight-update (WU) passes per sample at the effective\n"
                "sparsity, and whether its weights are N:M sparse (and why not, where not).");
  c.value("model", "NAME|PATH", "model description (models/NAME.json or a path)")
      .value("nm", "N:M", "N:M sparsity (overrides the model file; 'dense' = no pruning)")
      .value("method", "M", "bdwp (default), srste or dense")
      .flag("json", "the same as JSON on stdout (docs/formats.md, \"sat summary --json\")");
  return c;
}

std::string mflops(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", f / 1e6);
  return buf;
}

}  // namespace

int cmd_summary(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = summary_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  const Method method = method_flag(args, "bdwp");
  Model model = Model::load(resolve_model_path(args.str("model")), nm_opt(args));
  const auto rows = model.describe(method);
  const auto dense_rows = model.describe(Method::dense);
  double ff = 0, bp = 0, wu = 0, dff = 0, dbp = 0, dwu = 0;
  for (const auto& r : rows) ff += r.flops_ff, bp += r.flops_bp, wu += r.flops_wu;
  for (const auto& r : dense_rows) dff += r.flops_ff, dbp += r.flops_bp, dwu += r.flops_wu;
  const double ceiling = (dff + dbp + dwu) / std::max(1.0, ff + bp + wu);

  if (args.flag("json")) {
    nlohmann::json j = {{"model", model.name}, {"input", model.input}, {"classes", model.classes},
                        {"nm", model.nm.str()}, {"method", method_name(method)},
                        {"params", model.num_params()}};
    for (const auto& r : rows) {
      j["layers"].push_back({{"name", r.name}, {"type", r.type}, {"in", r.in}, {"out", r.out},
                             {"params", r.params}, {"flops_ff", r.flops_ff},
                             {"flops_bp", r.flops_bp}, {"flops_wu", r.flops_wu},
                             {"sparsity", r.sparsity}});
    }
    j["total"] = {{"flops_ff", ff}, {"flops_bp", bp}, {"flops_wu", wu},
                  {"dense_flops", dff + dbp + dwu}, {"step_speedup_ceiling", ceiling}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::printf("model %s: input %s, %d classes, %lld parameters, N:M %s, method %s\n\n",
              model.name.c_str(), shape_str(model.input).c_str(), model.classes,
              static_cast<long long>(model.num_params()), model.nm.str().c_str(), method_name(method));
  std::printf("%-28s %-14s %-16s %-16s %10s %10s %10s %10s  %s\n", "layer", "type", "in", "out",
              "params", "FF MFLOP", "BP MFLOP", "WU MFLOP", "sparsity");
  for (const auto& r : rows) {
    std::printf("%-28s %-14s %-16s %-16s %10lld %10s %10s %10s  %s\n", r.name.c_str(), r.type.c_str(),
                shape_str(r.in).c_str(), shape_str(r.out).c_str(), static_cast<long long>(r.params),
                mflops(r.flops_ff).c_str(), mflops(r.flops_bp).c_str(), mflops(r.flops_wu).c_str(),
                r.sparsity.c_str());
  }
  std::printf("%-28s %-14s %-16s %-16s %10lld %10s %10s %10s\n", "total (per sample)", "", "", "",
              static_cast<long long>(model.num_params()), mflops(ff).c_str(), mflops(bp).c_str(),
              mflops(wu).c_str());
  std::printf("\ndense step %.3f MFLOP, this step %.3f MFLOP: FLOP ceiling of the speed-up %.2fx\n",
              (dff + dbp + dwu) / 1e6, (ff + bp + wu) / 1e6, ceiling);
  return 0;
}

}  // namespace sat::cli
