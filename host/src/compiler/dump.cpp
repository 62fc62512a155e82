// Readable forms of a compiled program: the disassembler, the per-layer summary and the memory map.
#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "sat/bf16.hpp"
#include "sat/compiler.hpp"

namespace sat {

namespace {

using namespace sat::isa;

bool is_one_of(const char* s, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (!std::strcmp(s, n)) return true;
  return false;
}

// How a field prints: a DRAM address (ch:offset in bytes), a float, a packed pair, or a number.
enum class FieldKind { number, address, real, pair };

FieldKind field_kind(uint8_t op, const char* f) {
  if (is_one_of(f, {"addr", "val_addr", "idx_addr", "dense_addr", "bias_addr", "x", "y", "dy", "dx",
                    "gamma", "beta", "mean", "rstd", "run_mean", "run_var", "dgamma", "dbeta",
                    "logits", "labels", "dlogits", "out", "hyper"})) {
    return FieldKind::address;
  }
  if ((op == OP_SGD || op == OP_PGEN) && is_one_of(f, {"w", "v", "g"})) return FieldKind::address;
  if (op == OP_V_ADD && is_one_of(f, {"a", "b"})) return FieldKind::address;
  if (op == OP_V_BCAST_ADD && !std::strcmp(f, "p")) return FieldKind::address;
  if (is_one_of(f, {"kh_kw", "stride_pad"})) return FieldKind::pair;
  if (is_one_of(f, {"eps", "scale", "value"})) return FieldKind::real;
  if (op == OP_V_BN && !std::strcmp(f, "momentum")) return FieldKind::real;
  return FieldKind::number;
}

std::string units(uint8_t mask) {
  if (!mask) return "-";
  std::string s;
  for (int u = 0; u < kNumUnits; ++u) {
    if (!(mask & (1u << u))) continue;
    if (!s.empty()) s += ",";
    s += unit_name(u);
  }
  return s;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string mb(double bytes) { return fmt("%.3f", bytes / 1e6); }

}  // namespace

std::string disassemble(const Insn& in) {
  const uint8_t op = in.opcode();
  std::string s = fmt("%-13s wait=%-11s signal=%-11s", opcode_name(op), units(in.wait()).c_str(),
                      units(in.signal()).c_str());
  const int n = opcode_fields(op);
  for (int i = 1; i <= n; ++i) {
    const char* f = field_name(op, i);
    const uint32_t v = in[i];
    switch (field_kind(op, f)) {
      case FieldKind::address:
        s += fmt(" %s=%u:0x%" PRIx64, f, addr_channel(v), uint64_t{addr_offset(v)} * 2);
        break;
      case FieldKind::real:
        s += fmt(" %s=%g", f, static_cast<double>(f32_from_bits(v)));
        break;
      case FieldKind::pair:
        s += fmt(" %s=%u,%u", f, lo16(v), hi16(v));
        break;
      case FieldKind::number:
        s += fmt(" %s=%u", f, v);
        break;
    }
  }
  if (in.flags()) s += fmt(" flags=0x%x", in.flags());
  return s;
}

std::string program_summary(const Program& p) {
  struct Row {
    std::string name, type;
    int64_t insns = 0, loaded = 0, stored = 0;
    double macs = 0;
  };
  std::vector<Row> rows;
  std::map<std::string, size_t> index;
  std::map<std::string, Row> phases;
  std::vector<std::string> phase_order;
  for (const LayerSchedule& l : p.layers) {
    auto it = index.find(l.name);
    if (it == index.end()) {
      it = index.emplace(l.name, rows.size()).first;
      rows.push_back({l.name, l.type});
    }
    Row& r = rows[it->second];
    r.insns += l.instructions;
    r.loaded += l.bytes_loaded;
    r.stored += l.bytes_stored;
    r.macs += l.macs;
    if (!phases.count(l.phase)) phase_order.push_back(l.phase);
    Row& ph = phases[l.phase];
    ph.name = l.phase;
    ph.insns += l.instructions;
    ph.loaded += l.bytes_loaded;
    ph.stored += l.bytes_stored;
    ph.macs += l.macs;
  }
  const ScheduleOptions& o = p.options;
  std::string s = fmt("%s stream, batch %d, method %s; interleave mapping %s, pre-generation %s, "
                      "offline scheduling %s\n\n",
                      o.training ? "training-step" : "inference", o.batch, method_name(o.method),
                      o.interleave_mapping ? "on" : "off", o.pregeneration ? "on" : "off",
                      o.offline_scheduling ? "on" : "off");
  s += fmt("%-28s %-14s %9s %12s %12s %12s\n", "layer", "type", "insns", "loaded MB", "stored MB",
           "MMAC");
  Row total{"total", ""};
  for (const Row& r : rows) {
    s += fmt("%-28s %-14s %9" PRId64 " %12s %12s %12.3f\n", r.name.c_str(), r.type.c_str(), r.insns,
             mb(static_cast<double>(r.loaded)).c_str(), mb(static_cast<double>(r.stored)).c_str(),
             r.macs / 1e6);
    total.insns += r.insns;
    total.loaded += r.loaded;
    total.stored += r.stored;
    total.macs += r.macs;
  }
  s += fmt("%-28s %-14s %9" PRId64 " %12s %12s %12.3f\n\n", "total", "", total.insns,
           mb(static_cast<double>(total.loaded)).c_str(), mb(static_cast<double>(total.stored)).c_str(),
           total.macs / 1e6);
  s += "by phase:";
  for (const auto& ph : phase_order) {
    const Row& r = phases[ph];
    s += fmt("  %s %" PRId64 " insns %s MB", ph.c_str(), r.insns,
             mb(static_cast<double>(r.loaded + r.stored)).c_str());
  }
  s += "\n";

  int64_t per_unit[kNumUnits] = {}, waits = 0;
  for (const Insn& in : p.insns) {
    const int u = opcode_unit(in.opcode());
    if (u >= 0) ++per_unit[u];
    waits += __builtin_popcount(in.wait());
  }
  s += "by unit:";
  for (int u = 0; u < kNumUnits; ++u) s += fmt("  %s %" PRId64, unit_name(u), per_unit[u]);
  s += fmt("\ntokens: %" PRId64 " (waits = signals)\n", waits);
  const TimingEstimate t = estimate_timing(p);
  s += fmt("timing estimate (first-order model, docs/dataflow.md): %.0f cycles = %.3f ms at %d MHz;"
           " busy:", t.cycles, t.ms(), arch::kClockMHz);
  for (int u = 0; u < kNumExecUnits; ++u) s += fmt(" %s %.0f%%", unit_name(u), 100.0 * t.unit_busy[u] / std::max(1.0, t.cycles));
  s += ";";
  for (int c = 0; c < arch::kDdrChannels; ++c) s += fmt(" ch%d %.0f%%", c, 100.0 * t.channel_busy[c] / std::max(1.0, t.cycles));
  s += "\n";
  const double stream_bytes = static_cast<double>(p.insns.size()) * arch::kInsnWords * 4;
  s += fmt("instruction stream: %zu instructions, %.3f MB in DRAM, fetched as it runs (no on-chip "
           "instruction memory needed); prologue %zu instructions\n",
           p.insns.size(), stream_bytes / 1e6, p.prologue.size());
  if (!p.update.empty()) {
    s += fmt("update stream (data-parallel, run after the gradients are summed): %zu instructions\n", p.update.size());
  }
  return s;
}

std::string memory_map_summary(const Program& p) {
  std::string s = "memory map (bytes per DDR channel; 64-byte aligned regions):\n";
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
    std::map<std::string, uint64_t> by_kind;
    int count = 0;
    for (const Region& r : p.map.regions) {
      if (static_cast<int>(r.channel) != ch) continue;
      by_kind[region_kind_name(r.kind)] += r.bytes;
      ++count;
    }
    s += fmt("  ch%d: %12" PRIu64 " bytes (%.3f MB) in %d regions", ch, p.map.channel_bytes[ch],
             static_cast<double>(p.map.channel_bytes[ch]) / 1e6, count);
    for (const auto& [k, b] : by_kind) s += fmt("  %s %.3f", k.c_str(), static_cast<double>(b) / 1e6);
    s += "\n";
  }
  return s;
}

namespace {

// A stream with its per-layer headers.
std::string dump_stream(const std::vector<Insn>& insns, const std::vector<LayerSchedule>& layers) {
  std::string s;
  size_t seg = 0;
  for (size_t i = 0; i < insns.size(); ++i) {
    while (seg < layers.size() && static_cast<size_t>(layers[seg].first_insn) == i) {
      const LayerSchedule& l = layers[seg];
      s += fmt("\n; ---- %s (%s) %s: %" PRId64 " instructions\n", l.name.c_str(), l.type.c_str(),
               l.phase.c_str(), l.instructions);
      ++seg;
    }
    s += fmt("%7zu  ", i) + disassemble(insns[i]) + "\n";
  }
  return s;
}

}  // namespace

std::string dump_program(const Program& p) {
  std::string s = dump_stream(p.insns, p.layers);
  if (!p.update.empty()) {
    s += "\n; ==== update stream (data-parallel: run after the host writes the summed gradients)\n";
    s += dump_stream(p.update, p.update_layers);
  }
  s += "\n; ---- prologue (run before the first step: every weight form from the masters)\n";
  for (size_t i = 0; i < p.prologue.size(); ++i) s += fmt("%7zu  ", i) + disassemble(p.prologue[i]) + "\n";
  s += "\n" + program_summary(p) + "\n" + memory_map_summary(p) + "\nregions:\n";
  for (const Region& r : p.map.regions) {
    s += fmt("  %u:0x%09" PRIx64 " %12" PRIu64 "  %-11s %s\n", r.channel, r.offset, r.bytes,
             region_kind_name(r.kind), r.name.c_str());
  }
  return s;
}

}  // namespace sat
