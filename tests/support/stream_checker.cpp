// The tests' checker of a compiled instruction stream (stream_checker.hpp): the token pairing and
// the deadlock run of the units, and the data-flow walk over the memory map's regions.
#include "stream_checker.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

#include "sat/arch/access.hpp"
#include "sat/arch/isa.hpp"

namespace sat::test {

using namespace sat::isa;

namespace {

constexpr int kExec = kNumExecUnits;
// Past this many problems a part stops looking: the stream is wrong already, and one mistake of a
// lowering tends to repeat at every tile.
constexpr size_t kMaxProblems = 20;

std::string opcode_text(uint8_t op) {
  if (opcode_unit(op) >= 0) return opcode_name(op);
  char buf[16];
  std::snprintf(buf, sizeof buf, "opcode 0x%02x", op);
  return buf;
}

// "<layer> <phase>" of instruction i, from the per-layer accounting.
std::string layer_of(const Program& p, size_t i) {
  for (const auto& s : p.layers) {
    if (static_cast<int64_t>(i) >= s.first_insn && static_cast<int64_t>(i) < s.first_insn + s.instructions) {
      return s.name + " " + s.phase;
    }
  }
  return "?";
}

// How every problem names its instruction: "insn 12 GEMM (layers[2] bp)".
std::string where(const Program& p, size_t i) {
  return "insn " + std::to_string(i) + " " + opcode_text(p.insns[i].opcode()) + " (" + layer_of(p, i) + ")";
}

// ---- Tokens ----------------------------------------------------------------------------------------

// The pairing, with its happens-before relation kept as vector clocks (clock[j][u]: the latest
// instruction of unit u that instruction j is ordered after), then the recorded dependencies
// against it. A wait that cannot be paired makes the clocks meaningless, so it ends this part.
void pair_tokens(const Program& p, std::vector<std::string>& out) {
  const size_t n = p.insns.size();
  std::array<std::array<std::vector<int64_t>, kExec>, kExec> signals;   // [U][V]: signalling insns
  std::array<std::array<size_t, kExec>, kExec> consumed{};
  std::vector<std::array<int64_t, kExec>> clock(n);
  std::array<std::array<int64_t, kExec>, kExec> unit_clock;
  for (auto& c : unit_clock) c.fill(-1);
  constexpr uint32_t kQueueMask = (1u << kExec) - 1;
  for (size_t j = 0; j < n; ++j) {
    const Insn& in = p.insns[j];
    const int v = opcode_unit(in.opcode());
    if (v < 0) {
      out.push_back(where(p, j) + ": unknown opcode");
      return;
    }
    if (v >= kExec) {
      if (in.wait()) out.push_back(where(p, j) + ": CTRL insn waits");
      if (in.signal()) out.push_back(where(p, j) + ": CTRL insn signals");
      continue;
    }
    if ((in.wait() | in.signal()) & ~kQueueMask) {
      out.push_back(where(p, j) + ": a token mask names a unit without token queues");
    }
    auto clk = unit_clock[v];
    for (int u = 0; u < kExec; ++u) {
      if (!(in.wait() & (1u << u))) continue;
      if (u == v) {
        out.push_back(where(p, j) + ": waits on its own unit");
        return;
      }
      const auto& q = signals[u][v];
      size_t& c = consumed[u][v];
      if (c >= q.size()) {
        out.push_back(where(p, j) + " (" + disassemble(in) + ") waits on " + unit_name(u) +
                      " with no earlier unconsumed signal");
        return;
      }
      const auto& from = clock[static_cast<size_t>(q[c++])];
      for (size_t x = 0; x < kExec; ++x) clk[x] = std::max(clk[x], from[x]);
    }
    clk[v] = static_cast<int64_t>(j);
    clock[j] = clk;
    unit_clock[v] = clk;
    for (int w = 0; w < kExec; ++w) {
      if (!(in.signal() & (1u << w))) continue;
      if (w == v) {
        out.push_back(where(p, j) + ": signals its own unit");
        return;
      }
      signals[v][w].push_back(static_cast<int64_t>(j));
    }
  }
  for (int u = 0; u < kExec; ++u)
    for (int v = 0; v < kExec; ++v) {
      const auto& q = signals[u][v];
      const size_t c = consumed[u][v];
      if (c != q.size()) {
        out.push_back("tokens " + std::string(unit_name(u)) + " -> " + unit_name(v) + " left at FINISH: " +
                      std::to_string(q.size() - c) + ", the first from " + where(p, static_cast<size_t>(q[c])));
      }
    }
  for (const auto& [i, j] : p.dependencies) {
    if (out.size() >= kMaxProblems) return;
    if (i < 0 || i >= j || j >= static_cast<int64_t>(n)) {
      out.push_back("recorded dependency (" + std::to_string(i) + ", " + std::to_string(j) +
                    ") is not an earlier and a later instruction of the stream");
      continue;
    }
    const Insn& first = p.insns[static_cast<size_t>(i)];
    const int u = opcode_unit(first.opcode());
    if (u < 0 || u >= kExec) {
      out.push_back(where(p, static_cast<size_t>(j)) + ": depends on " + where(p, static_cast<size_t>(i)) +
                    ", which is on no unit with token queues");
      continue;
    }
    if (clock[static_cast<size_t>(j)][u] < i) {
      out.push_back(where(p, static_cast<size_t>(j)) + " (" + disassemble(p.insns[static_cast<size_t>(j)]) +
                    ") is not ordered after " + where(p, static_cast<size_t>(i)) + " (" + disassemble(first) + ")");
    }
  }
}

// Runs the units as decoupled in-order machines, a wait blocking on an empty FIFO and a signal on
// a full one (arch::kTokenDepth); a state where no unit can move while some still have
// instructions is a deadlock the kernel's watchdog would report.
void run_units(const Program& p, std::vector<std::string>& out) {
  std::array<std::vector<size_t>, kExec> queue;
  for (size_t j = 0; j < p.insns.size(); ++j) {
    const int u = opcode_unit(p.insns[j].opcode());
    if (u >= 0 && u < kExec) queue[u].push_back(j);
  }
  std::array<size_t, kExec> pc{};
  std::array<std::array<int, kExec>, kExec> fifo{};
  for (;;) {
    bool moved = false, left = false;
    for (int v = 0; v < kExec; ++v) {
      const auto& q = queue[v];
      size_t& at = pc[v];
      while (at < q.size()) {
        const Insn& in = p.insns[q[at]];
        bool ok = true;
        for (int u = 0; u < kExec; ++u)
          if ((in.wait() & (1u << u)) && fifo[u][v] == 0) ok = false;
        for (int w = 0; w < kExec; ++w)
          if ((in.signal() & (1u << w)) && fifo[v][w] >= arch::kTokenDepth) ok = false;
        if (!ok) break;
        for (int u = 0; u < kExec; ++u)
          if (in.wait() & (1u << u)) --fifo[u][v];
        for (int w = 0; w < kExec; ++w)
          if (in.signal() & (1u << w)) ++fifo[v][w];
        ++at;
        moved = true;
      }
      if (at < q.size()) left = true;
    }
    if (!left) return;
    if (!moved) break;
  }
  std::string blocked;
  for (int v = 0; v < kExec; ++v) {
    if (pc[v] < queue[v].size()) {
      blocked += std::string(blocked.empty() ? "" : "; ") + unit_name(v) + " at " + where(p, queue[v][pc[v]]);
    }
  }
  out.push_back("token deadlock at FIFO depth " + std::to_string(arch::kTokenDepth) + ": " + blocked);
}

// ---- Data flow -------------------------------------------------------------------------------------

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// Walks the stream once, keeping per region which halfwords are written so far.
class DataFlow {
 public:
  explicit DataFlow(const Program& p) : p_(p) {
    const auto& rs = p.map.regions;
    written_.resize(rs.size());
    count_.assign(rs.size(), 0);
    for (size_t i = 0; i < rs.size(); ++i) {
      const Region& r = rs[i];
      const bool host = r.kind == RegionKind::input || r.kind == RegionKind::labels ||
                        r.kind == RegionKind::master || r.kind == RegionKind::momentum ||
                        r.kind == RegionKind::weight_form || r.kind == RegionKind::control ||
                        (r.kind == RegionKind::stats && !ends_with(r.name, ".mean") && !ends_with(r.name, ".rstd"));
      written_[i].assign(r.bytes / 2, host ? 1 : 0);
      count_[i] = host ? static_cast<int64_t>(r.bytes / 2) : 0;
    }
  }

  std::vector<std::string> run() {
    for (size_t i = 0; i < p_.insns.size() && problems_.size() < kMaxProblems; ++i) step(i, p_.insns[i]);
    gradients_written_by_their_layers();
    return problems_;
  }

 private:
  void problem(size_t i, const std::string& what) { problems_.push_back(where(p_, i) + ": " + what); }

  // Region holding halfword `off` of channel `ch`; -1 if none.
  int region_at(uint32_t ch, uint64_t off) const {
    const auto& rs = p_.map.regions;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (rs[i].channel == ch && off >= rs[i].offset / 2 && off < (rs[i].offset + rs[i].bytes) / 2) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  // The region an access lies in entirely, or -1 after reporting.
  int locate(size_t i, const DramAccess& a, uint64_t* base) {
    const uint32_t ch = addr_channel(a.addr);
    const uint64_t first = addr_offset(a.addr);
    const int r = region_at(ch, first);
    if (r < 0) {
      problem(i, std::string(a.field) + " address is in no region");
      return -1;
    }
    const uint64_t last = first + static_cast<uint64_t>((a.far_row_offset() + (a.cols - 1) * a.col_stride) * a.elem_halfwords + a.elem_halfwords - 1);
    const Region& reg = p_.map.regions[static_cast<size_t>(r)];
    if (last >= (reg.offset + reg.bytes) / 2) {
      problem(i, std::string(a.field) + " runs past the end of region '" + reg.name + "'");
      return -1;
    }
    *base = first - reg.offset / 2;
    return r;
  }

  void touch(size_t i, const DramAccess& a) {
    if (a.rows <= 0 || a.cols <= 0) {
      problem(i, std::string(a.field) + " has an empty extent");
      return;
    }
    uint64_t base = 0;
    const int r = locate(i, a, &base);
    if (r < 0) return;
    auto& bits = written_[static_cast<size_t>(r)];
    int64_t unwritten = 0;
    for (int64_t y = 0; y < a.rows; ++y)
      for (int64_t x = 0; x < a.cols; ++x)
        for (int h = 0; h < a.elem_halfwords; ++h) {
          const uint64_t o = base + static_cast<uint64_t>((a.row_offset(y) + x * a.col_stride) * a.elem_halfwords + h);
          if (a.write) {
            if (!bits[o]) {
              bits[o] = 1;
              ++count_[static_cast<size_t>(r)];
            }
          } else if (!bits[o]) {
            ++unwritten;
          }
        }
    if (unwritten) {
      problem(i, std::string(a.field) + " reads " + std::to_string(unwritten) + " halfwords of '" +
                     p_.map.regions[static_cast<size_t>(r)].name + "' that nothing wrote before");
    }
  }

  // Reads the region at `addr` as a whole (convolution windows, col2im targets): it must be written
  // completely by then.
  void whole(size_t i, const char* field, uint32_t addr) {
    const int r = region_at(addr_channel(addr), addr_offset(addr));
    if (r < 0) {
      problem(i, std::string(field) + " address is in no region");
      return;
    }
    if (count_[static_cast<size_t>(r)] != static_cast<int64_t>(written_[static_cast<size_t>(r)].size())) {
      problem(i, std::string(field) + " reads '" + p_.map.regions[static_cast<size_t>(r)].name +
                     "' before it is completely written");
    }
  }

  // The instruction's DRAM accesses (sat/arch/access.hpp). A convolution window's extent is not in
  // its fields: its whole region must be written before (the scatter-add of ST_COL2IM too, whose
  // target the scheduler zero-fills first).
  void step(size_t i, const Insn& in) {
    DramAccess acc[kMaxDramAccesses];
    const int n = dram_accesses(in, acc);
    for (int k = 0; k < n; ++k) {
      if (!acc[k].window) touch(i, acc[k]);
      else if (!acc[k].write) whole(i, acc[k].field, acc[k].addr);
    }
  }

  // The framework zero-fills a gradient no instruction wrote (Lowering::update_param); with every
  // parameter reaching the loss, such a fill means a lowering forgot a gradient.
  void gradients_written_by_their_layers() {
    std::map<uint32_t, const ParamBinding*> by_addr;
    for (const auto& pb : p_.params)
      if (pb.grad >= 0) by_addr[p_.map.regions[static_cast<size_t>(pb.grad)].addr()] = &pb;
    for (size_t i = 0; i < p_.insns.size(); ++i) {
      const Insn& in = p_.insns[i];
      if (in.opcode() != OP_V_FILL) continue;
      const auto it = by_addr.find(in[f_V_FILL::y]);
      if (it != by_addr.end()) problem(i, "gradient of " + it->second->param->name + " is never written by its layer");
    }
  }

  const Program& p_;
  std::vector<std::vector<uint8_t>> written_;   // per region, per halfword
  std::vector<int64_t> count_;                  // written halfwords per region
  std::vector<std::string> problems_;
};

}  // namespace

std::vector<std::string> check_tokens(const Program& p) {
  std::vector<std::string> out;
  pair_tokens(p, out);
  run_units(p, out);
  return out;
}

std::vector<std::string> check_data_flow(const Program& p) { return DataFlow(p).run(); }

std::vector<std::string> check_stream(const Program& p) {
  std::vector<std::string> out = check_tokens(p);
  for (std::string& s : check_data_flow(p)) out.push_back(std::move(s));
  return out;
}

}  // namespace sat::test
