// The study report of one simulated run (step_report.hpp, docs/sim.md "Reports").
#include "sat_sim_study/step_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "sat/error.hpp"

namespace sat::sim {

namespace {

constexpr int kExec = isa::kNumExecUnits;

std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

nlohmann::ordered_json per_unit(const std::array<uint64_t, kExec>& v) {
  nlohmann::ordered_json j;
  for (int u = 0; u < kExec; ++u) j[isa::unit_name(u)] = v[u];
  return j;
}

nlohmann::ordered_json per_cause(const std::array<uint64_t, kNumStallCauses>& v) {
  nlohmann::ordered_json j;
  for (int c = 0; c < kNumStallCauses; ++c) j[stall_cause_name(c)] = v[c];
  return j;
}

std::vector<double> channel_gbs(const Tally& t, uint64_t cycles, const SimConfig& cfg) {
  std::vector<double> g(arch::kDdrChannels, 0.0);
  if (!cycles) return g;
  const double seconds = cycles / (cfg.clock_mhz * 1e6);
  for (int c = 0; c < arch::kDdrChannels; ++c) g[c] = (t.dram_read[c] + t.dram_written[c]) / seconds / 1e9;
  return g;
}

}  // namespace

double dram_peak_bytes_per_cycle(const SimConfig& cfg) {
  // The AXI port carries kDdrBusBits a kernel cycle; the DIMM kDdrChannelGBs: the lower bounds.
  return std::min<double>(arch::kDdrBusBits / 8.0, arch::kDdrChannelGBs * 1e3 / cfg.clock_mhz);
}

void Tally::add(const InsnRecord& r) {
  ++instructions;
  macs += r.macs;
  if (r.sparse) macs_sparse += r.macs;
  busy[r.unit] += r.compute;
  for (int c = 0; c < kNumStallCauses; ++c) stall[c] += r.stall[c];
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    dram_read[c] += r.dram_read[c];
    dram_written[c] += r.dram_written[c];
  }
  buffer_read += r.buffer_read;
  buffer_written += r.buffer_written;
  activates += r.activates;
  precharges += r.precharges;
  vector_ops += r.vector_ops;
}

uint64_t Tally::dram_bytes() const {
  uint64_t s = 0;
  for (int c = 0; c < arch::kDdrChannels; ++c) s += dram_read[c] + dram_written[c];
  return s;
}

EnergyEvents Tally::events(double seconds) const {
  EnergyEvents e;
  e.macs_dense = static_cast<double>(macs - macs_sparse);
  e.macs_sparse = static_cast<double>(macs_sparse);
  e.buffer_bytes_read = static_cast<double>(buffer_read);
  e.buffer_bytes_written = static_cast<double>(buffer_written);
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    e.dram_bytes_read += static_cast<double>(dram_read[c]);
    e.dram_bytes_written += static_cast<double>(dram_written[c]);
  }
  e.activates = static_cast<double>(activates);
  e.precharges = static_cast<double>(precharges);
  e.vector_ops = static_cast<double>(vector_ops);
  e.seconds = seconds;
  return e;
}

double StepReport::pe_utilisation(uint64_t macs, uint64_t cyc) const {
  return cyc ? static_cast<double>(macs) / (static_cast<double>(cyc) * config.pe.peak_macs_per_cycle(false)) : 0.0;
}

Bounds run_bounds(const Tally& t, const SimConfig& cfg) {
  Bounds b;
  b.compute = arch::ceil_div_u64(t.macs, cfg.pe.peak_macs_per_cycle(false));
  const double peak = dram_peak_bytes_per_cycle(cfg);
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    const double bytes = static_cast<double>(t.dram_read[c] + t.dram_written[c]);
    b.dram = std::max<uint64_t>(b.dram, static_cast<uint64_t>(std::ceil(bytes / peak)));
  }
  return b;
}

CriticalPath critical_path(const std::vector<InsnRecord>& records) {
  CriticalPath p;
  if (records.empty()) return p;
  uint32_t max_index = 0;
  const InsnRecord* last = &records.front();
  for (const auto& r : records) {
    max_index = std::max(max_index, r.index);
    if (r.end > last->end) last = &r;
  }
  std::vector<int64_t> at(max_index + 1, -1);
  for (size_t i = 0; i < records.size(); ++i) at[records[i].index] = static_cast<int64_t>(i);
  auto rec = [&](int64_t index) -> const InsnRecord* {
    if (index < 0 || index > static_cast<int64_t>(max_index) || at[static_cast<size_t>(index)] < 0) return nullptr;
    return &records[static_cast<size_t>(at[static_cast<size_t>(index)])];
  };
  // Walk back from the last instruction to end; `t` is the time not yet accounted for, so the unit,
  // DRAM and fetch shares add up to the run's cycles exactly. A link through a unit, a token or a
  // bank port continues at the releaser's end; one through FIFO room or a full instruction queue at
  // the releaser's start (its leaving the queue or popping the token released the wait).
  uint64_t t = last->end;
  size_t steps = 0;
  for (const InsnRecord* r = last; r != nullptr && steps <= 2 * records.size() + 2; ++steps) {
    const uint64_t hi = std::min(r->end, t), lo = std::min(r->start, t);
    const uint64_t span = hi - lo;
    const uint64_t waited = std::min<uint64_t>(span, r->stall[kStallDram]);
    p.unit[r->unit] += span;
    p.unit_dram[r->unit] += waited;
    p.dram += waited;
    ++p.instructions;
    t = lo;
    const InsnRecord* next = nullptr;
    bool at_start = false;
    if (r->release == Release::fetch) {
      // Back along fetch, one instruction a cycle, to the instruction whose start opened the full
      // queue fetch waited on; the time in between is fetch's.
      const InsnRecord* f = r;
      while (f && f->fetch_gate < 0) f = f->index > 0 ? rec(f->index - 1) : nullptr;
      if (f) {
        next = rec(f->fetch_gate);
        at_start = true;
      }
    } else {
      next = rec(r->released_by);
      at_start = r->release == Release::token_room;
    }
    if (!next || next == r) break;
    const uint64_t resume = std::min(at_start ? next->start : next->end, t);
    p.fetch += t - resume;
    t = resume;
    r = next;
  }
  p.fetch += t;
  return p;
}

StepReport build_step_report(const Program& program, const std::vector<InsnRecord>& records,
                             const DeviceCounters& counters, const SimConfig& cfg, const std::string& description,
                             double wall_seconds) {
  StepReport r;
  r.description = description;
  r.config = cfg;
  r.cycles = counters.cycles;
  r.wall_seconds = wall_seconds;
  for (const auto& l : program.layers) {
    LayerRow row;
    row.layer = l.name;
    row.type = l.type;
    row.phase = l.phase;
    row.first_insn = l.first_insn;
    row.start = UINT64_MAX;
    r.layers.push_back(row);
  }
  if (r.layers.empty()) {   // a stream without accounting (sat op): one row for all
    LayerRow row;
    row.layer = "(stream)";
    row.type = "-";
    row.phase = "-";
    row.start = UINT64_MAX;
    r.layers.push_back(row);
  }
  for (const auto& rec : records) {
    r.total.add(rec);
    auto it = std::upper_bound(r.layers.begin(), r.layers.end(), static_cast<int64_t>(rec.index),
                               [](int64_t idx, const LayerRow& row) { return idx < row.first_insn; });
    LayerRow& row = it == r.layers.begin() ? r.layers.front() : *std::prev(it);
    row.tally.add(rec);
    row.start = std::min(row.start, rec.start);
    row.end = std::max(row.end, rec.end);
  }
  uint64_t frontier = 0;
  for (auto& row : r.layers) {
    if (row.start == UINT64_MAX) row.start = row.end = frontier;
    row.cycles = row.end > frontier ? row.end - frontier : 0;
    frontier = std::max(frontier, row.end);
    row.energy = energy(row.tally.events(row.cycles / (cfg.clock_mhz * 1e6)), cfg.energy);
  }
  r.energy = energy(r.total.events(r.seconds()), cfg.energy);
  r.critical = critical_path(records);
  r.bounds = run_bounds(r.total, cfg);

  // The gap above the larger bound, charged to what the critical path did besides the bounding work.
  std::map<std::string, double> gap;
  for (int u = 0; u < kExec; ++u) {
    const double work = static_cast<double>(r.critical.unit[u] - r.critical.unit_dram[u]);
    if (work > 0) gap[u == isa::UNIT_GEMM ? "pipeline" : stall_cause_name(kStallTokenFirst + u)] += work;
  }
  gap["dram"] = static_cast<double>(r.critical.dram);
  gap["fetch"] = static_cast<double>(r.critical.fetch);
  // The bound's own work is not a stall: take it from the part of the path that did it.
  const double bound = static_cast<double>(r.bounds.larger());
  if (r.bounds.compute >= r.bounds.dram) {
    gap["pipeline"] = std::max(0.0, gap["pipeline"] - bound);
  } else {
    std::string biggest = "dram";
    for (const char* k : {"token_LOAD", "token_STORE", "token_VEC", "token_UPD", "token_PGEN"})
      if (gap.count(k) && gap[k] > gap[biggest]) biggest = k;
    gap[biggest] = std::max(0.0, gap[biggest] - bound);
  }
  r.gap_by_cause = gap;
  double best = -1;
  for (const auto& [k, v] : gap)
    if (v > best) {
      best = v;
      r.gap_cause = k;
    }
  return r;
}

std::vector<std::pair<std::string, uint64_t>> cycles_by_phase(const StepReport& r) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& row : r.layers) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == row.phase; });
    if (it == out.end()) out.emplace_back(row.phase, row.cycles);
    else it->second += row.cycles;
  }
  return out;
}

uint64_t phase_span(const StepReport& r, const std::string& phase) {
  return phases_span(r, {phase});
}

uint64_t phases_span(const StepReport& r, const std::vector<std::string>& phases) {
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& row : r.layers)
    if (std::find(phases.begin(), phases.end(), row.phase) != phases.end() && row.end > row.start)
      spans.emplace_back(row.start, row.end);
  std::sort(spans.begin(), spans.end());
  uint64_t covered = 0, reach = 0;
  for (const auto& [lo, hi] : spans) {
    const uint64_t from = std::max(lo, reach);
    if (hi > from) covered += hi - from;
    reach = std::max(reach, hi);
  }
  return covered;
}

double gemm_pe_utilisation(const StepReport& r) {
  uint64_t macs = 0;
  for (const auto& row : r.layers)
    if (row.phase == "ff" || row.phase == "bp" || row.phase == "wu") macs += row.tally.macs;
  return r.pe_utilisation(macs, phases_span(r, {"ff", "bp", "wu"}));
}

namespace {

nlohmann::ordered_json tally_json(const StepReport& r, const Tally& t, uint64_t cycles) {
  nlohmann::ordered_json j;
  j["instructions"] = t.instructions;
  j["macs"] = t.macs;
  j["macs_sparse"] = t.macs_sparse;
  j["pe_utilisation"] = r.pe_utilisation(t.macs, cycles);
  uint64_t rd = 0, wr = 0;
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    rd += t.dram_read[c];
    wr += t.dram_written[c];
  }
  j["dram_bytes_read"] = rd;
  j["dram_bytes_written"] = wr;
  j["dram_bytes_read_per_channel"] = t.dram_read;
  j["dram_bytes_written_per_channel"] = t.dram_written;
  j["dram_gbs_per_channel"] = channel_gbs(t, cycles, r.config);
  j["dram_activates"] = t.activates;
  j["dram_precharges"] = t.precharges;
  j["buffer_bytes_read"] = t.buffer_read;
  j["buffer_bytes_written"] = t.buffer_written;
  j["busy"] = per_unit(t.busy);
  j["stall_by_cause"] = per_cause(t.stall);
  return j;
}

}  // namespace

nlohmann::ordered_json report_json(const StepReport& r) {
  nlohmann::ordered_json j;
  j["description"] = r.description;
  j["cycles"] = r.cycles;
  j["clock_mhz"] = r.config.clock_mhz;
  j["seconds"] = r.seconds();
  j["wall_seconds"] = r.wall_seconds;
  j["cycles_per_wall_second"] = r.wall_seconds > 0 ? r.cycles / r.wall_seconds : 0.0;
  const nlohmann::ordered_json totals = tally_json(r, r.total, r.cycles);
  for (auto& [k, v] : totals.items()) j[k] = v;
  j["gemm_pe_utilisation"] = gemm_pe_utilisation(r);
  const double flops = 2.0 * static_cast<double>(r.total.macs);
  j["gflops"] = r.seconds() > 0 ? flops / r.seconds() / 1e9 : 0.0;
  j["peak_gflops"] = r.config.peak_gflops(false);
  nlohmann::ordered_json b;
  b["compute_cycles"] = r.bounds.compute;
  b["dram_cycles"] = r.bounds.dram;
  b["bound_by"] = r.bounds.bound_by();
  b["above_bound"] = r.bounds.larger() ? static_cast<double>(r.cycles) / r.bounds.larger() : 0.0;
  b["gap_cycles"] = r.cycles > r.bounds.larger() ? r.cycles - r.bounds.larger() : 0;
  b["gap_cause"] = r.gap_cause;
  b["gap_by_cause"] = r.gap_by_cause;
  j["bounds"] = b;
  nlohmann::ordered_json core;
  core["kind"] = r.config.gemm_core;
  if (r.config.gemm_core == "rtl") {
    core["gemm_instructions"] = r.rtl.instructions;
    core["array_cycles"] = r.rtl.cycles;
    core["cycles_differ"] = r.rtl.differ;
  }
  j["gemm_core"] = core;
  nlohmann::ordered_json cp;
  cp["instructions"] = r.critical.instructions;
  nlohmann::ordered_json frac;
  std::string top = "fetch";
  double top_v = static_cast<double>(r.critical.fetch);
  for (int u = 0; u < kExec; ++u) {
    frac[isa::unit_name(u)] = r.cycles ? static_cast<double>(r.critical.unit[u]) / r.cycles : 0.0;
    if (r.critical.unit[u] > top_v) {
      top_v = static_cast<double>(r.critical.unit[u]);
      top = isa::unit_name(u);
    }
  }
  frac["fetch"] = r.cycles ? static_cast<double>(r.critical.fetch) / r.cycles : 0.0;
  cp["fraction"] = frac;
  cp["dram_fraction"] = r.cycles ? static_cast<double>(r.critical.dram) / r.cycles : 0.0;
  cp["critical_unit"] = top;
  cp["critical_unit_fraction"] = r.cycles ? top_v / r.cycles : 0.0;
  j["critical_path"] = cp;
  nlohmann::ordered_json e = nlohmann::ordered_json::parse(r.energy.to_json().dump());
  e["gflops_per_watt"] = gflops_per_watt(flops, r.energy.total());
  e["average_watts"] = r.seconds() > 0 ? r.energy.total() / r.seconds() : 0.0;
  j["energy"] = e;
  nlohmann::ordered_json phases = nlohmann::ordered_json::array();
  std::map<std::string, Tally> by_phase;
  std::map<std::string, EnergyBreakdown> e_phase;
  for (const auto& row : r.layers) {
    Tally& t = by_phase[row.phase];
    t.instructions += row.tally.instructions;
    t.macs += row.tally.macs;
    t.macs_sparse += row.tally.macs_sparse;
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      t.dram_read[c] += row.tally.dram_read[c];
      t.dram_written[c] += row.tally.dram_written[c];
    }
    for (int u = 0; u < kExec; ++u) t.busy[u] += row.tally.busy[u];
    for (int c = 0; c < kNumStallCauses; ++c) t.stall[c] += row.tally.stall[c];
    t.buffer_read += row.tally.buffer_read;
    t.buffer_written += row.tally.buffer_written;
    t.activates += row.tally.activates;
    t.precharges += row.tally.precharges;
    t.vector_ops += row.tally.vector_ops;
    EnergyBreakdown& eb = e_phase[row.phase];
    eb.mac += row.energy.mac;
    eb.buffer += row.energy.buffer;
    eb.dram += row.energy.dram;
    eb.dram_rows += row.energy.dram_rows;
    eb.vector += row.energy.vector;
    eb.static_ += row.energy.static_;
  }
  for (const auto& [phase, cycles] : cycles_by_phase(r)) {
    nlohmann::ordered_json p;
    p["phase"] = phase;
    p["cycles"] = cycles;
    const uint64_t span = phase_span(r, phase);
    p["span_cycles"] = span;
    const nlohmann::ordered_json t = tally_json(r, by_phase[phase], span);
    for (auto& [k, v] : t.items()) p[k] = v;
    p["energy_j"] = e_phase[phase].total();
    phases.push_back(p);
  }
  j["phases"] = phases;
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const auto& row : r.layers) {
    nlohmann::ordered_json l;
    l["layer"] = row.layer;
    l["type"] = row.type;
    l["phase"] = row.phase;
    l["first_insn"] = row.first_insn;
    l["start"] = row.start;
    l["end"] = row.end;
    l["cycles"] = row.cycles;
    l["span_cycles"] = row.span();
    const nlohmann::ordered_json t = tally_json(r, row.tally, row.span());
    for (auto& [k, v] : t.items()) l[k] = v;
    l["energy_j"] = row.energy.total();
    l["energy_dynamic_j"] = row.energy.dynamic();
    layers.push_back(l);
  }
  j["layers"] = layers;
  j["config"] = nlohmann::ordered_json::parse(r.config.to_json().dump());
  return j;
}

std::string layers_csv(const StepReport& r) {
  std::string s = "layer,type,phase,first_insn,instructions,start,end,cycles,macs,macs_sparse,pe_utilisation";
  for (int c = 0; c < arch::kDdrChannels; ++c) s += ",dram_read_ch" + std::to_string(c);
  for (int c = 0; c < arch::kDdrChannels; ++c) s += ",dram_written_ch" + std::to_string(c);
  for (int c = 0; c < arch::kDdrChannels; ++c) s += ",dram_gbs_ch" + std::to_string(c);
  s += ",buffer_bytes_read,buffer_bytes_written,dram_activates,dram_precharges";
  for (int u = 0; u < kExec; ++u) s += std::string(",busy_") + isa::unit_name(u);
  for (int c = 0; c < kNumStallCauses; ++c) s += std::string(",stall_") + stall_cause_name(c);
  s += ",energy_j,energy_dynamic_j,span_cycles\n";
  auto quote = [](const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string q = "\"";
    for (char ch : v) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  for (const auto& row : r.layers) {
    const Tally& t = row.tally;
    s += quote(row.layer) + "," + quote(row.type) + "," + quote(row.phase) + "," + std::to_string(row.first_insn) +
         "," + std::to_string(t.instructions) + "," + std::to_string(row.start) + "," + std::to_string(row.end) + "," +
         std::to_string(row.cycles) + "," + std::to_string(t.macs) + "," +
         std::to_string(t.macs_sparse) + "," + fmt(r.pe_utilisation(t.macs, row.span()));
    for (int c = 0; c < arch::kDdrChannels; ++c) s += "," + std::to_string(t.dram_read[c]);
    for (int c = 0; c < arch::kDdrChannels; ++c) s += "," + std::to_string(t.dram_written[c]);
    for (double g : channel_gbs(t, row.span(), r.config)) s += "," + fmt(g);
    s += "," + std::to_string(t.buffer_read) + "," + std::to_string(t.buffer_written) + "," +
         std::to_string(t.activates) + "," + std::to_string(t.precharges);
    for (int u = 0; u < kExec; ++u) s += "," + std::to_string(t.busy[u]);
    for (int c = 0; c < kNumStallCauses; ++c) s += "," + std::to_string(t.stall[c]);
    s += "," + fmt(row.energy.total()) + "," + fmt(row.energy.dynamic()) + "," + std::to_string(row.span()) + "\n";
  }
  return s;
}

}  // namespace sat::sim
