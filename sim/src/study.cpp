// Studies on the simulator (sat_sim/study.hpp, docs/sim.md).
#include "sat_sim/study.hpp"

#include <chrono>

#include "sat/accelerator.hpp"
#include "sat/error.hpp"
#include "sat/trace.hpp"

namespace sat::sim {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    const size_t n = s.find(sep, pos);
    out.push_back(s.substr(pos, n == std::string::npos ? std::string::npos : n - pos));
    if (n == std::string::npos) break;
    pos = n + 1;
  }
  return out;
}

}  // namespace

StepReport simulate_step(const StepSpec& spec, const SimConfig& cfg, const Progress& progress) {
  Model model = Model::load(spec.model_path, spec.nm);
  ScheduleOptions opt;
  opt.method = spec.method;
  opt.batch = spec.batch > 0 ? spec.batch : model.recipe.batch;
  opt.training = !spec.inference;
  opt.interleave_mapping = spec.interleave_mapping;
  opt.pregeneration = spec.pregeneration;
  opt.offline_scheduling = spec.offline_scheduling;
  opt.transposed_conv_bp = spec.transposed_conv_bp;
  opt.phase_bp = spec.phase_bp;
  opt.overlap_update = spec.overlap_update;
  opt.balanced_k_tiles = spec.balanced_k_tiles;
  opt.patch_reuse = spec.patch_reuse;
  opt.fuse_relu = spec.fuse_relu;
  opt.fused_pregen = spec.fused_pregen;
  cfg.apply_to(opt);
  model.regenerate(opt.method);
  auto dev = make_sim_device(cfg);
  std::string what;
  auto image = make_program_image(model, opt, *dev, spec.seed, &what);
  std::vector<InsnRecord> records;
  dev->record(&records);
  dev->on_progress(progress);
  dev->cold_start();   // a study point's figures never depend on the points before it
  const RunResult r = image->run(device_run_timeout());
  check_run(*dev, r, "the simulated " + what);
  if (!r.counters) throw Error("device 'sim' returned no counters");
  StepReport report = build_step_report(image->program(), records, *r.counters, cfg, what, r.seconds);
  report.rtl = dev->rtl_tally();
  return report;
}

std::vector<StudyPoint> sweep_points(const std::string& spec, const StepSpec& base, const SimConfig& cfg) {
  std::vector<StudyPoint> points{StudyPoint{"", base, cfg}};
  if (spec.empty()) throw Error("--sweep: the spec is empty (e.g. --sweep 'nm=2:8,1:8;clock=200,250')");
  for (const std::string& axis : split(spec, ';')) {
    const size_t eq = axis.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == axis.size()) {
      throw Error("--sweep: '" + axis + "' is not key=v1,v2,... (e.g. nm=2:8,1:8)");
    }
    const std::string key = axis.substr(0, eq);
    std::vector<StudyPoint> next;
    for (const StudyPoint& p : points) {
      for (const std::string& v : split(axis.substr(eq + 1), ',')) {
        StudyPoint q = p;
        q.label += (q.label.empty() ? "" : " ") + key + "=" + v;
        try {
          if (key == "nm") {
            if (v == "dense") {
              q.spec.method = Method::dense;
            } else {
              q.spec.nm = NM::parse(v);
              if (q.spec.method == Method::dense) q.spec.method = Method::bdwp;
            }
          } else if (key == "batch") {
            char* end = nullptr;
            const long b = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end || b < 1 || b > 0xffff) throw Error("batch '" + v + "' is not in 1..65535");
            q.spec.batch = static_cast<int>(b);
          } else {
            apply_setting(q.config, key, v);
          }
        } catch (const Error& e) {
          throw Error("--sweep " + key + "=" + v + ": " + e.what());
        }
        next.push_back(q);
      }
    }
    points = std::move(next);
  }
  return points;
}

std::vector<StudyPoint> ablation_points(const StepSpec& base, const SimConfig& cfg) {
  std::vector<StudyPoint> points;
  points.push_back({"all on", base, cfg});
  // The scheduler's switches, each off in turn.
  const std::pair<const char*, bool StepSpec::*> switches[] = {
      {"interleave mapping off", &StepSpec::interleave_mapping},
      {"pre-generation off", &StepSpec::pregeneration},
      {"offline scheduling off", &StepSpec::offline_scheduling},
      {"BP convolution off", &StepSpec::transposed_conv_bp},
      {"update overlap off", &StepSpec::overlap_update},
      {"balanced K tiles off", &StepSpec::balanced_k_tiles},
      {"patch reuse off", &StepSpec::patch_reuse},
      {"ReLU fusion off", &StepSpec::fuse_relu},
      {"fused pre-generation off", &StepSpec::fused_pregen},
      {"phase BP off", &StepSpec::phase_bp},
  };
  for (const auto& [label, flag] : switches) {
    StudyPoint p{label, base, cfg};
    p.spec.*flag = false;
    points.push_back(p);
  }
  // The hardware levers of docs/dataflow.md §8, each back to its plain value (skipped where the
  // configuration already has it).
  auto lever = [&](const char* label, bool plain, auto&& set_plain) {
    if (plain) return;
    StudyPoint q{label, base, cfg};
    set_plain(q.config);
    points.push_back(q);
  };
  lever("vector lanes 1", cfg.vector_lanes == 1, [](SimConfig& c) { c.vector_lanes = 1; });
  lever("conv patch off", cfg.conv_patch == 0, [](SimConfig& c) { c.conv_patch = 0; });
  lever("vec scratch off", cfg.vec_scratch == 0, [](SimConfig& c) { c.vec_scratch = 0; });
  lever("load engines 1", cfg.load_engines == 1, [](SimConfig& c) { c.load_engines = 1; });
  lever("bank fill 1 beat", cfg.fill_beats == 1, [](SimConfig& c) { c.fill_beats = 1; });
  return points;
}

}  // namespace sat::sim
