// The body of `sat sim` (sim.cpp): single runs, sweeps, ablations and the evaluation document over
// the simulator's study layer (sat_sim/study.hpp). Built only with the simulator.
#if SAT_HAVE_SIM
#include "sim_study.hpp"
#include "dataflow_flags.hpp"

#include <unistd.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>

#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat_sim/study.hpp"
#include "sat_sim_study/resources.hpp"
#include "sat_sim_study/svg_plot.hpp"

namespace sat::cli {

namespace {

using sim::SimConfig;
using sim::StepReport;
using sim::StepSpec;
using sim::StudyPoint;
using Clock = std::chrono::steady_clock;

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// A one-line progress display on stderr (a terminal redraws it in place; a log gets a line now and
// then), with the ETA of the whole study: runs done, and the fraction of the current one.
class ProgressLine {
 public:
  ProgressLine(bool quiet, size_t runs) : quiet_(quiet), runs_(runs), tty_(isatty(2)), t0_(Clock::now()) {}
  void update(size_t run, const std::string& what, double fraction) {
    if (quiet_) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
    const double done = (static_cast<double>(run) + fraction) / static_cast<double>(runs_);
    if (!tty_ && elapsed - last_ < 10.0 && fraction > 0 && fraction < 1) return;
    last_ = elapsed;
    const double eta = done > 0.01 ? elapsed / done - elapsed : NAN;
    std::fprintf(stderr, "%s[sim] %zu/%zu %-40.40s %5.1f%%  %6.1f s elapsed, ETA %s%s", tty_ ? "\r" : "", run + 1,
                 runs_, what.c_str(), 100.0 * done, elapsed, std::isnan(eta) ? "?" : fmt("%.0f s", eta).c_str(),
                 tty_ ? "   " : "\n");
    std::fflush(stderr);
  }
  void finish() {
    if (!quiet_ && tty_) std::fputs("\n", stderr);
  }

 private:
  bool quiet_;
  size_t runs_;
  bool tty_;
  Clock::time_point t0_;
  double last_ = -1e9;
};

StepSpec spec_from(const Args& args) {
  StepSpec s;
  s.model_path = resolve_model_path(args.str("model"));
  if (auto nm = nm_opt(args)) s.nm = *nm;
  s.method = method_flag(args, "bdwp");
  // 0: the model's recipe.
  s.batch = args.has("batch") ? static_cast<int>(args.integer("batch", 0, 1, 0xffff)) : 0;
  s.inference = args.flag("inference");
  apply_dataflow_switches(args, s);
  s.seed = static_cast<uint64_t>(args.integer("seed", 1, 0, LLONG_MAX));
  return s;
}

}  // namespace

SimConfig sim_config_from(const Args& args) {
  SimConfig cfg;
  if (auto path = args.opt("config")) cfg = sim::read_sim_config(*path);
  if (auto set = args.opt("set")) {
    size_t pos = 0;
    while (pos <= set->size()) {
      const size_t comma = set->find(',', pos);
      const std::string kv = set->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) args.fail("--set: '" + kv + "' is not KEY=VALUE");
      try {
        sim::apply_setting(cfg, kv.substr(0, eq), kv.substr(eq + 1));
      } catch (const Error& e) {
        args.fail(std::string("--set: ") + e.what());
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  if (args.flag("rtl")) cfg.gemm_core = "rtl";
  return cfg;
}

std::string config_overrides(const SimConfig& cfg) {
  std::string out;
  // Walks the two JSON trees side by side; to_json() writes every key, so the shapes agree.
  std::function<void(const nlohmann::json&, const nlohmann::json&, const std::string&)> walk =
      [&](const nlohmann::json& now, const nlohmann::json& def, const std::string& path) {
        if (now.is_object() && def.is_object()) {
          for (const auto& [k, v] : now.items()) {
            walk(v, def.contains(k) ? def[k] : nlohmann::json(), path.empty() ? k : path + "." + k);
          }
        } else if (now != def) {
          out += (out.empty() ? "" : ", ") + path + " = " + now.dump();
        }
      };
  walk(cfg.to_json(), SimConfig{}.to_json(), "");
  return out;
}

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const std::string& text) {
  atomic_write_file((dir / name).string(), text);
}

// The per-layer stacked bars: one bar per layer, one segment per pass.
std::string cycles_plot(const StepReport& r) {
  std::vector<std::string> layers;
  std::map<std::string, size_t> at;
  std::vector<std::string> phases;
  for (const auto& row : r.layers) {
    if (!at.count(row.layer)) {
      at[row.layer] = layers.size();
      layers.push_back(row.layer);
    }
    if (std::find(phases.begin(), phases.end(), row.phase) == phases.end()) phases.push_back(row.phase);
  }
  std::vector<plot::Series> series;
  for (const auto& ph : phases) series.push_back({ph, std::vector<double>(layers.size(), 0.0)});
  for (const auto& row : r.layers) {
    const size_t s = static_cast<size_t>(std::find(phases.begin(), phases.end(), row.phase) - phases.begin());
    series[s].values[at[row.layer]] += static_cast<double>(row.cycles) / (r.config.clock_mhz * 1e3);   // ms
  }
  return plot::stacked_bars(r.description + ": time per layer and pass", layers, series, "ms at " +
                            std::to_string(r.config.clock_mhz) + " MHz");
}

std::string roofline_plot(const StepReport& r) {
  std::vector<plot::Point> pts;
  for (const auto& row : r.layers) {
    const double bytes = static_cast<double>(row.tally.dram_bytes());
    if (row.tally.macs == 0 || row.span() == 0 || bytes <= 0) continue;
    const double flops = 2.0 * static_cast<double>(row.tally.macs);
    const double secs = row.span() / (r.config.clock_mhz * 1e6);
    pts.push_back({row.layer + " " + row.phase, flops / bytes, flops / secs / 1e9, row.phase});
  }
  const double bw = arch::kDdrChannels * sim::dram_peak_bytes_per_cycle(r.config) * r.config.clock_mhz / 1e3;
  return plot::roofline(r.description + ": roofline (kept-weight MACs)", r.config.peak_gflops(false), bw, pts,
                        "operational intensity (flops per DRAM byte)", "GFLOPS");
}

void print_summary(const StepReport& r, const nlohmann::ordered_json& j) {
  std::printf("%s: %llu cycles = %.3f ms at %d MHz; PE utilisation %.1f%%, %.1f GFLOPS (peak %.1f)\n",
              r.description.c_str(), static_cast<unsigned long long>(r.cycles), r.seconds() * 1e3,
              r.config.clock_mhz, 100.0 * j["pe_utilisation"].get<double>(), j["gflops"].get<double>(),
              j["peak_gflops"].get<double>());
  const auto& b = j["bounds"];
  std::printf("  bounds: compute %llu cycles, DRAM %llu cycles (bound by %s); the step is %.2fx the larger, "
              "the gap mostly %s\n",
              static_cast<unsigned long long>(r.bounds.compute), static_cast<unsigned long long>(r.bounds.dram),
              r.bounds.bound_by(), b["above_bound"].get<double>(), r.gap_cause.c_str());
  const auto& cp = j["critical_path"];
  std::printf("  critical path: %s for %.1f%% of the step (", cp["critical_unit"].get<std::string>().c_str(),
              100.0 * cp["critical_unit_fraction"].get<double>());
  bool first = true;
  for (auto& [k, v] : cp["fraction"].items()) {
    if (v.get<double>() < 0.001) continue;
    std::printf("%s%s %.1f%%", first ? "" : ", ", k.c_str(), 100.0 * v.get<double>());
    first = false;
  }
  std::printf(")\n  by pass:");
  for (const auto& [ph, c] : sim::cycles_by_phase(r)) {
    std::printf(" %s %.1f%%", ph.c_str(), r.cycles ? 100.0 * c / r.cycles : 0.0);
  }
  std::printf("\n  energy: %.3f mJ (%.3f mJ dynamic), %.1f W average, %.2f GFLOPS/W\n", r.energy.total() * 1e3,
              r.energy.dynamic() * 1e3, j["energy"]["average_watts"].get<double>(),
              j["energy"]["gflops_per_watt"].get<double>());
  if (r.config.gemm_core == "rtl") {
    std::printf("  RTL PE array (gemm_core rtl): %llu GEMM instructions, %llu array cycles, %llu of them timed "
                "other than the core model (sat/arch/timing.hpp)\n",
                (unsigned long long)r.rtl.instructions, (unsigned long long)r.rtl.cycles,
                (unsigned long long)r.rtl.differ);
  }
  std::printf("  simulated %.0f cycles per wall second (%.2f s)\n", j["cycles_per_wall_second"].get<double>(),
              r.wall_seconds);
}

StepReport run_point(const StudyPoint& p, ProgressLine& line, size_t i, const std::string& what) {
  line.update(i, what, 0.0);
  return sim::simulate_step(p.spec, p.config, [&](uint64_t done, uint64_t total) {
    line.update(i, what, total ? static_cast<double>(done) / static_cast<double>(total) : 0.0);
  });
}

nlohmann::ordered_json point_row(const std::string& label, const StepReport& r, double base_cycles) {
  const nlohmann::ordered_json j = sim::report_json(r);
  nlohmann::ordered_json row;
  row["point"] = label;
  row["description"] = r.description;
  row["cycles"] = r.cycles;
  row["ms"] = r.seconds() * 1e3;
  row["relative_to_first"] = base_cycles > 0 ? static_cast<double>(r.cycles) / base_cycles : 1.0;
  row["speedup_vs_first"] = r.cycles ? base_cycles / static_cast<double>(r.cycles) : 0.0;
  row["macs"] = r.total.macs;
  row["pe_utilisation"] = j["pe_utilisation"];
  row["gflops"] = j["gflops"];
  row["dram_bytes"] = r.total.dram_bytes();
  row["bound_by"] = r.bounds.bound_by();
  row["critical_unit"] = j["critical_path"]["critical_unit"];
  row["energy_j"] = r.energy.total();
  row["gflops_per_watt"] = j["energy"]["gflops_per_watt"];
  row["config"] = j["config"];
  return row;
}

void write_table(const std::filesystem::path& dir, const std::string& stem, const std::string& title,
                 const nlohmann::ordered_json& rows, const std::string& plot_key, const std::string& y_label) {
  write(dir, stem + ".json", rows.dump(2) + "\n");
  std::string csv = "point,cycles,ms,speedup_vs_first,macs,pe_utilisation,gflops,dram_bytes,bound_by,critical_unit,"
                    "energy_j,gflops_per_watt\n";
  std::vector<std::string> cats;
  plot::Series s{y_label, {}};
  for (const auto& row : rows) {
    std::string label = row["point"].get<std::string>();
    csv += "\"" + label + "\"," + std::to_string(row["cycles"].get<uint64_t>()) + "," +
           fmt("%.4f", row["ms"].get<double>()) + "," + fmt("%.4f", row["speedup_vs_first"].get<double>()) + "," +
           std::to_string(row["macs"].get<uint64_t>()) + "," + fmt("%.4f", row["pe_utilisation"].get<double>()) +
           "," + fmt("%.2f", row["gflops"].get<double>()) + "," + std::to_string(row["dram_bytes"].get<uint64_t>()) +
           "," + row["bound_by"].get<std::string>() + "," + row["critical_unit"].get<std::string>() + "," +
           fmt("%.6g", row["energy_j"].get<double>()) + "," + fmt("%.3f", row["gflops_per_watt"].get<double>()) +
           "\n";
    cats.push_back(label);
    s.values.push_back(row[plot_key].get<double>());
  }
  write(dir, stem + ".csv", csv);
  write(dir, stem + ".svg", plot::grouped_bars(title, cats, {s}, y_label, 1.0, "first point"));
}

int single_run(const Args& args, const std::filesystem::path& out) {
  const StepSpec spec = spec_from(args);
  const SimConfig cfg = sim_config_from(args);
  ProgressLine line(args.flag("quiet"), 1);
  const StepReport r = run_point({"", spec, cfg}, line, 0, spec.model_path.substr(spec.model_path.rfind('/') + 1));
  line.finish();
  const nlohmann::ordered_json j = sim::report_json(r);
  write(out, "report.json", j.dump(2) + "\n");
  write(out, "layers.csv", sim::layers_csv(r));
  write(out, "cycles.svg", cycles_plot(r));
  write(out, "roofline.svg", roofline_plot(r));
  print_summary(r, j);
  std::printf("wrote %s/{report.json, layers.csv, cycles.svg, roofline.svg}\n", out.string().c_str());
  return 0;
}

int study(const Args& args, const std::filesystem::path& out, bool ablate) {
  const StepSpec spec = spec_from(args);
  const SimConfig cfg = sim_config_from(args);
  const std::vector<StudyPoint> points =
      ablate ? sim::ablation_points(spec, cfg) : sim::sweep_points(args.str("sweep"), spec, cfg);
  ProgressLine line(args.flag("quiet"), points.size());
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  double base = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const StepReport r = run_point(points[i], line, i, points[i].label);
    if (i == 0) base = static_cast<double>(r.cycles);
    rows.push_back(point_row(points[i].label, r, base));
  }
  line.finish();
  const std::string stem = ablate ? "ablation" : "sweep";
  write_table(out, stem, ablate ? "Dataflow ablation: step time relative to all on" : "Sweep: speedup over the first point",
              rows, ablate ? "relative_to_first" : "speedup_vs_first", ablate ? "time / all on" : "speedup");
  for (const auto& row : rows) {
    std::printf("  %-40s %12llu cycles %9.3f ms  x%.3f  PE %.1f%%  %s-bound, critical %s\n",
                row["point"].get<std::string>().c_str(), static_cast<unsigned long long>(row["cycles"].get<uint64_t>()),
                row["ms"].get<double>(), ablate ? row["relative_to_first"].get<double>() : row["speedup_vs_first"].get<double>(),
                100.0 * row["pe_utilisation"].get<double>(), row["bound_by"].get<std::string>().c_str(),
                row["critical_unit"].get<std::string>().c_str());
  }
  std::printf("wrote %s/{%s.json, %s.csv, %s.svg}\n", out.string().c_str(), stem.c_str(), stem.c_str(), stem.c_str());
  return 0;
}

// --resources: the estimate of the configuration alone. A configuration that does not fit is a
// finding, not an error: the exit status is 0 either way.
int resources(const Args& args) {
  auto refuse = [&](const char* flag) {
    args.fail(std::string("--resources estimates the accelerator's configuration alone (--config, --set); --") +
              flag + " selects a simulated step or study and does not combine with it");
  };
  for (const char* f : {"model", "nm", "method", "batch", "seed", "sweep", "evaluate"})
    if (args.has(f)) refuse(f);
  for (const char* f : {"ablate", "inference"})
    if (args.flag(f)) refuse(f);
  for (const DataflowSwitch& sw : kDataflowSwitches)
    if (args.flag(sw.flag)) refuse(sw.flag);
  const sim::ResourceEstimate e = sim::estimate_resources(sim_config_from(args));
  std::fputs(sim::resources_table(e).c_str(), stdout);
  if (!e.fits()) std::printf("the configuration does not fit the %s (see docs/resources.md)\n", e.device.name);
  if (auto dir = args.opt("out")) {
    std::error_code ec;
    std::filesystem::create_directories(*dir, ec);
    if (ec) args.fail("--out " + *dir + ": cannot create the directory: " + ec.message());
    write(*dir, "resources.json", e.to_json().dump(2) + "\n");
    std::printf("wrote %s/resources.json\n", dir->c_str());
  }
  return 0;
}

}  // namespace

int run_evaluation(const Args& args, const std::filesystem::path& out);

int run_sim_command(const Args& args) {
  if (args.flag("resources")) return resources(args);
  const std::filesystem::path out = args.str("out", "sim-out");
  const int modes = (args.has("sweep") ? 1 : 0) + (args.flag("ablate") ? 1 : 0) + (args.has("evaluate") ? 1 : 0);
  if (modes > 1) args.fail("--sweep, --ablate and --evaluate are separate studies: give one");
  if (!args.has("evaluate") && !args.has("model")) args.fail("--model is required (e.g. --model lenet5)");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) args.fail("--out " + out.string() + ": cannot create the directory: " + ec.message());
  if (args.has("evaluate")) return run_evaluation(args, out);
  if (args.has("sweep")) return study(args, out, false);
  if (args.flag("ablate")) return study(args, out, true);
  return single_run(args, out);
}

}  // namespace sat::cli
#endif
